#!/usr/bin/env python3
"""Dumps one PyTorch training iteration of a preset, for gancu's golden whole-step test.

The test loads this file, sets gancu's parameters to `init.*`, feeds `input.x_u8` and `input.z`
as the real batch and the noise, runs one iteration (train.d_steps must be 1) and compares every
tensor below. Parameters use PyTorch layouts and gancu's checkpoint names; images and image
gradients are NHWC, gancu's layout. Scalars have shape [1].

  init.G.<i>.<p>, init.D.<i>.<p>      parameters and batch-norm running_mean/running_var before the step
  input.x_u8   u8  [B, H, W, C]       the real batch
  input.x      f   [B, H, W, C]       the real batch normalized: u * float32(2/255) - 1
  input.z      f   [B, z_dim]         the noise
  out.fake     f   [B, H, W, C]       G(z) (G in train mode: batch statistics)
  out.d_real   f   [B, 1]             D(x), logits
  out.d_fake   f   [B, 1]             D(G(z)) in the D step, logits
  out.d_fake_g f   [B, 1]             D(G(z)) in the G step, after D's Adam step, logits
  loss.d_real, loss.d_fake, loss.d, loss.g   f [1]   mean BCE-with-logits losses (loss.d = sum of the two)
  grad.D.<i>.<p>                      D's gradients of the D step (real pass + fake pass), before Adam
  grad.G.<i>.<p>                      G's gradients of the G step
  grad.fake    f   [B, H, W, C]       d loss.g / d out.fake
  adam.D.<i>.<p>.m / .v, adam.G.<i>.<p>.m / .v   Adam's first and second moments after the step
  updated.G.*, updated.D.*            parameters and running statistics after the iteration

Batch-norm running statistics of D are updated by all three D passes (real, fake, G step),
PyTorch's train-mode behaviour; if gancu's G step leaves them alone, compare D's running
statistics with care (the metadata says this too).

Real batch: --real FILE (IDX or .npy uint8 [B,H,W(,C)]), else the first B images of --data (the
preset's data set by default; synthetic where it is absent). Noise: --noise FILE.npy, else torch's
generator seeded with --seed. Parameters: --init CKPT (a gancu safetensors checkpoint with G.* and
D.*), else this script's own init (the preset's scheme, torch's RNG).

Example:
  /usr/bin/python3 tools/dump_reference.py --preset dcgan --batch 8 --out build/ref_dcgan.safetensors
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gancu_torch as gt  # noqa: E402
import torch  # noqa: E402


def nhwc(t: torch.Tensor) -> torch.Tensor:
    return t.permute(0, 2, 3, 1).contiguous() if t.dim() == 4 else t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", required=True, help="preset name or TOML file")
    ap.add_argument("--out", required=True, help="output .safetensors")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    ap.add_argument("--batch", type=int, default=None, help="batch size (default: the preset's)")
    ap.add_argument("--seed", type=int, default=None, help="seed of init and noise (default: the preset's)")
    ap.add_argument("--init", default=None, help="gancu checkpoint to start from (safetensors, G.* and D.*)")
    ap.add_argument("--data", default=None, help="where the real batch comes from (default: the preset's data set)")
    ap.add_argument("--real", default=None, help="real batch file: IDX or .npy, uint8")
    ap.add_argument("--noise", default=None, help="noise file: .npy float [B, z_dim]")
    ap.add_argument("--float64", action="store_true", help="compute (and store) in float64 instead of float32")
    args = ap.parse_args(argv)

    sets = list(args.set)
    if args.batch is not None:
        sets.append(f"train.batch={args.batch}")
    if args.seed is not None:
        sets.append(f"train.seed={args.seed}")
    try:
        cfg = gt.load_config(args.preset, sets)
        if cfg["train"]["d_steps"] != 1:
            raise gt.ConfigError("dump_reference.py supports train.d_steps = 1 only")
        trainer = gt.Trainer(cfg, "cpu")
        B, (C, H, W) = trainer.batch, trainer.image_shape
        notes = []
        if args.init:
            notes += gt.apply_checkpoint(trainer.G_eager, trainer.D_eager, gt.load_gancu_checkpoint(args.init), args.init)
        if args.float64:
            trainer.G_eager.double()
            trainer.D_eager.double()
        dtype = torch.float64 if args.float64 else torch.float32

        # The real batch.
        if args.real:
            p = Path(args.real)
            x_u8 = np.load(p) if p.suffix == ".npy" else gt.read_idx(p)
            if x_u8.ndim == 3:
                x_u8 = x_u8[..., None]
            if x_u8.dtype != np.uint8 or x_u8.shape[1:] != (H, W, C) or x_u8.shape[0] < B:
                raise gt.ConfigError(f"{p}: need uint8 [>={B}, {H}, {W}, {C}], got {x_u8.dtype} {list(x_u8.shape)}")
            x_u8, real_desc = x_u8[:B], str(p)
        else:
            source = args.data or cfg.get("data", {}).get("name", "synthetic")
            try:
                images, real_desc = gt.load_images(source, trainer.image_shape, seed=trainer.seed)
            except gt.ConfigError as e:
                if args.data:
                    raise
                notes.append(f"{e}; using synthetic images")
                images, real_desc = gt.load_images("synthetic", trainer.image_shape, seed=trainer.seed, synthetic_count=B)
            if images.shape[0] < B:
                raise gt.ConfigError(f"{real_desc}: {images.shape[0]} images, fewer than a batch of {B}")
            x_u8 = images[:B]
            real_desc += f" (first {B} images)"
        x_u8 = np.array(x_u8, dtype=np.uint8, order="C", copy=True)
        x = gt.normalize_u8(gt.nhwc_to_nchw_u8(x_u8, "cpu"))  # float32, as gancu normalizes
        x = x.to(dtype)

        # The noise.
        if args.noise:
            z = torch.from_numpy(np.load(args.noise))
            if tuple(z.shape) != (B, trainer.z_dim):
                raise gt.ConfigError(f"{args.noise}: need [{B}, {trainer.z_dim}], got {list(z.shape)}")
            noise_desc = args.noise
        else:
            z = trainer.noise(B)
            noise_desc = f"torch generator, seed {trainer.seed} ({trainer.latent})"
        z = z.to(dtype)
    except gt.ConfigError as e:
        print(f"dump_reference: {e}", file=sys.stderr)
        return 2

    out = {f"init.{k}": v.clone() for k, v in gt.checkpoint_state(trainer.G_eager, trainer.D_eager).items()}
    rec = {}
    trainer.train_step(real=[x], noise=[z], record=rec)

    out["input.x_u8"] = torch.from_numpy(x_u8)
    out["input.x"] = nhwc(x)
    out["input.z"] = z
    out["out.fake"] = nhwc(rec["fake"])
    out["out.d_real"] = rec["d_real"]
    out["out.d_fake"] = rec["d_fake"]
    out["out.d_fake_g"] = rec["d_fake_g"]
    out["loss.d_real"] = rec["loss_d_real"].reshape(1)
    out["loss.d_fake"] = rec["loss_d_fake"].reshape(1)
    out["loss.d"] = (rec["loss_d_real"] + rec["loss_d_fake"]).reshape(1)
    out["loss.g"] = rec["loss_g"].reshape(1)
    out["grad.fake"] = nhwc(rec["grad_fake"])
    for k, v in rec["grad_D"].items():
        out[f"grad.D.{k}"] = v
    for k, v in rec["grad_G"].items():
        out[f"grad.G.{k}"] = v
    for prefix, net, opt in (("G", trainer.G_eager, trainer.opt_g), ("D", trainer.D_eager, trainer.opt_d)):
        for k, p in net.named_parameters():
            st = opt.state[p]
            out[f"adam.{prefix}.{k}.m"] = st["exp_avg"]
            out[f"adam.{prefix}.{k}.v"] = st["exp_avg_sq"]
    out.update({f"updated.{k}": v for k, v in gt.checkpoint_state(trainer.G_eager, trainer.D_eager).items()})

    meta = {
        "producer": "tools/dump_reference.py", "preset": cfg["_source"], "set": " ".join(sets),
        "torch_version": torch.__version__, "dtype": str(dtype).replace("torch.", ""),
        "batch": str(B), "image_hwc": f"{H},{W},{C}", "z_dim": str(trainer.z_dim),
        "real": real_desc, "noise": noise_desc, "init": args.init or f"own ({cfg['model']['init']}, seed {trainer.seed})",
        "layouts": "parameters: PyTorch; images and image gradients: NHWC",
        "d_running_stats": "updated by the real, fake and G-step passes of D",
        "adam": "eps 1e-8; lr/betas from optim.g / optim.d",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    gt.write_safetensors(args.out, out, meta)
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    size = Path(args.out).stat().st_size
    print(f"dump_reference: {args.out}: {len(out)} tensors, {size / 1e6:.1f} MB; "
          f"loss_d {out['loss.d'].item():.6f} loss_g {out['loss.g'].item():.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
