#!/usr/bin/env python3
"""One PyTorch iteration of a preset, from this script's own starting point, in one file.

A thin wrapper over tools/step_reference.py (the reference that gancu's C++ step test calls with
gancu's own parameters and inputs): here the parameters come from the peer's init (or --init), the
real batches from a data set (or --real), the noise and the penalty's draws from torch's
generator (or --noise), so that a preset's iteration can be looked at without gancu. Any
train.loss and train.d_steps.

The file holds, besides step_reference.py's outputs (updated.*, loss.*, penalty, grad_norm, k,
convergence, grad.*; see its docstring):
  init.G.<i>.<p>, init.D.<i>.<p>   the parameters and running statistics before the iteration
  input.<name>                     step_reference.py's inputs: x.k (NHWC, normalized), z.k, eps.k,
                                   alpha.k, u.k (as the objective needs), step; for a conditional
                                   model class.k (the real images' labels) and fake_class.k
  input.x_u8.k   u8 [B, H, W, C]   the real batches before normalization (image presets)
Parameters use PyTorch layouts and gancu's checkpoint names; images are NHWC, gancu's layout.

Real batches: --real FILE (IDX or .npy uint8 [>= d_steps * B, H, W(, C)]), else the first
d_steps * B images of --data (the preset's data set by default; synthetic where it is absent), with
their labels for a conditional model (--real has none: use --data).
Noise: --noise FILE.npy ([d_steps * B, z_dim]), else torch's generator seeded with --seed; a
conditional model's fake classes from torch's generator too.
Parameters: --init CKPT (a gancu checkpoint), else the preset's scheme with torch's RNG.

Example:
  /usr/bin/python3 tools/dump_reference.py --preset dcgan --batch 8 --set train.loss=hinge \\
      --out build/ref_dcgan.safetensors
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gancu_torch as gt  # noqa: E402
import step_reference  # noqa: E402
import torch  # noqa: E402


def real_batches(args, cfg, trainer, count, notes) -> tuple[np.ndarray, np.ndarray | None, str]:
    """uint8 [count, H, W, C] images, their labels (None where the data has none) and a description."""
    C, H, W = trainer.image_shape
    if args.real:
        if trainer.classes > 0:
            raise gt.ConfigError(f"--real {args.real}: a conditional model (model.classes = {trainer.classes}) "
                                 "needs the images' labels; --real has none (use --data)")
        p = Path(args.real)
        if not p.is_file():
            raise gt.ConfigError(f"--real {p}: no such file")
        x_u8 = np.load(p) if p.suffix == ".npy" else gt.read_idx(p)
        if x_u8.ndim == 3:
            x_u8 = x_u8[..., None]
        if x_u8.dtype != np.uint8 or x_u8.shape[1:] != (H, W, C) or x_u8.shape[0] < count:
            raise gt.ConfigError(f"{p}: need uint8 [>={count}, {H}, {W}, {C}], got {x_u8.dtype} {list(x_u8.shape)}")
        return x_u8[:count], None, str(p)
    source = args.data or cfg.get("data", {}).get("name", "synthetic")
    try:
        images, labels, desc = gt.load_labeled_images(source, trainer.image_shape, seed=trainer.seed)
    except gt.ConfigError as e:
        if args.data:
            raise
        notes.append(f"{e}; using synthetic images")
        images, labels, desc = gt.load_labeled_images("synthetic", trainer.image_shape, seed=trainer.seed,
                                                      synthetic_count=count)
    if images.shape[0] < count:
        raise gt.ConfigError(f"{desc}: {images.shape[0]} images, fewer than {count}")
    trainer.set_images(images, labels, desc)  # checks a conditional model's labels
    return images[:count], None if labels is None else labels[:count], f"{desc} (first {count} images)"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", required=True, help="preset name or TOML file")
    ap.add_argument("--out", required=True, help="output .safetensors")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    ap.add_argument("--batch", type=int, default=None, help="batch size (default: the preset's)")
    ap.add_argument("--seed", type=int, default=None, help="seed of init, noise and draws (default: the preset's)")
    ap.add_argument("--init", default=None, help="gancu checkpoint to start from (safetensors, G.* and D.*)")
    ap.add_argument("--data", default=None, help="where the real batches come from (default: the preset's data set)")
    ap.add_argument("--real", default=None, help="real batches file: IDX or .npy, uint8")
    ap.add_argument("--noise", default=None, help="noise file: .npy float [d_steps * B, z_dim]")
    ap.add_argument("--float64", action="store_true", help="compute (and store) in float64 instead of float32")
    args = ap.parse_args(argv)

    sets = list(args.set)
    if args.batch is not None:
        sets.append(f"train.batch={args.batch}")
    if args.seed is not None:
        sets.append(f"train.seed={args.seed}")
    notes = []
    try:
        cfg = gt.load_config(args.preset, sets)
        trainer = gt.Trainer(cfg, "cpu")  # the starting point and the generators
        if len(trainer.image_shape) != 3:
            raise gt.ConfigError("dump_reference.py draws images; for point presets write step_reference.py's inputs")
        if args.init:
            notes += gt.apply_checkpoint(trainer.G_eager, trainer.D_eager, gt.load_gancu_checkpoint(args.init), args.init)
        B, n = trainer.batch, trainer.d_steps
        x_u8, labels, real_desc = real_batches(args, cfg, trainer, n * B, notes)
        x_u8 = np.array(x_u8, dtype=np.uint8, order="C", copy=True)
        if args.noise:
            z = torch.from_numpy(np.load(args.noise)).float()
            if tuple(z.shape) != (n * B, trainer.z_dim):
                raise gt.ConfigError(f"{args.noise}: need [{n * B}, {trainer.z_dim}], got {list(z.shape)}")
            noise_desc = args.noise
        else:
            z = trainer.noise(n * B)
            noise_desc = f"torch generator, seed {trainer.seed} ({trainer.latent})"
    except gt.ConfigError as e:
        print(f"dump_reference: {e}", file=sys.stderr)
        return 2

    init = gt.checkpoint_state(trainer.G_eager, trainer.D_eager)
    inputs = {"step": np.zeros(1, np.int64)}
    for k in range(n):
        xk = gt.normalize_u8(torch.from_numpy(x_u8[k * B:(k + 1) * B]))  # NHWC, as gancu normalizes
        inputs[f"x.{k}"] = xk.numpy()
        inputs[f"z.{k}"] = z[k * B:(k + 1) * B].numpy()
        if trainer.classes > 0:
            inputs[f"class.{k}"] = labels[k * B:(k + 1) * B].astype(np.int64)
            inputs[f"fake_class.{k}"] = trainer.draw_classes(B).numpy()
        for name, t in gt.draw_penalty_inputs(trainer.objective, xk.permute(0, 3, 1, 2), trainer.penalty_gen).items():
            inputs[f"{name}.{k}"] = (t.permute(0, 2, 3, 1) if t.dim() == 4 else t).contiguous().numpy()
    try:
        out, summary, more = step_reference.run_reference(cfg, init, inputs, args.float64)
    except gt.ConfigError as e:
        print(f"dump_reference: {e}", file=sys.stderr)
        return 2
    out.update({f"init.{k}": v for k, v in init.items()})
    out.update({f"input.{k}": v for k, v in inputs.items()})
    out.update({f"input.x_u8.{k}": x_u8[k * B:(k + 1) * B] for k in range(n)})
    meta = {"producer": "tools/dump_reference.py", "preset": cfg["_source"], "set": " ".join(sets),
            "torch_version": torch.__version__, "dtype": "float64" if args.float64 else "float32",
            "real": real_desc, "noise": noise_desc,
            "init": args.init or f"own ({cfg['model']['init']}, seed {trainer.seed})",
            "layouts": "parameters: PyTorch; images NHWC"}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    gt.write_safetensors(args.out, out, meta)
    for note in notes + more:
        print(f"note: {note}", file=sys.stderr)
    print(f"dump_reference: {summary}; {len(out)} tensors, {Path(args.out).stat().st_size / 1e6:.1f} MB -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
