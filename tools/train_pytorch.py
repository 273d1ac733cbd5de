#!/usr/bin/env python3
"""Trains a gancu preset in PyTorch, to put PyTorch's samples beside gancu's in docs/.

Same networks, init scheme, data normalization, iteration, objective and optimizer settings as
gancu (gancu_torch.Trainer); a conditional model (model.classes, the cgan and cwgan-gp presets)
trains on the data set's labels with fake classes drawn each D step. The random numbers are
torch's, not gancu's Philox streams, so runs agree in distribution, not bit for bit.

Writes into --out:
  metrics.jsonl                one object per log step: step, loss_d, loss_g, elapsed_s and the
                               objective's metrics (gancu_torch.Trainer.train_step): d_x, d_g_z
                               (D's mean verdict on the real and on the fake batch of the step's
                               last D step, before D's update: sigmoid for the BCE objectives, the
                               raw score otherwise), penalty and grad_norm, k and convergence (began)
  samples/step_NNNNNN.png      fixed-noise grids every log.sample_every steps
  samples_final.png            the fixed-noise grid after the last step (log.grid images, 8 per row,
                               2-pixel padding; a conditional model: one row per class, as gancu's
                               grids, log.grid rounded up to whole rows)
  checkpoint_final.safetensors G.* and D.* tensors (PyTorch layouts, gancu's names)
  config.json                  the resolved config

Samples are drawn with G in train mode (batch statistics of the 64 fixed-noise samples, running statistics restored after), as gancu does with run.sample_bn = "batch"; --sample-mode eval uses the running statistics.

Example:
  /usr/bin/python3 tools/train_pytorch.py --preset dcgan --steps 1500 --out runs/torch-dcgan
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

# Torch builds on the system OpenBLAS (Debian's) run much slower when OpenBLAS starts threads
# of its own beside torch's (see bench_pytorch.py); set before torch is loaded.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import gancu_torch as gt  # noqa: E402
import torch  # noqa: E402


LOG_NAMES = {"d_x": "D(x)", "d_g_z": "D(G(z))"}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", required=True, help="preset name or TOML file")
    ap.add_argument("--steps", type=int, default=None, help="iterations (default: the preset's train.steps)")
    ap.add_argument("--out", required=True, help="run folder")
    ap.add_argument("--data", default=None, help="data-set name, directory or IDX file (default: the preset's data.name)")
    ap.add_argument("--seed", type=int, default=None, help="seed (default: the preset's train.seed)")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    ap.add_argument("--device", default=None, choices=["cpu", "cuda"], help="default: cuda when available")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--sample-mode", default="train", choices=["eval", "train"],
                    help="batch norm in G when drawing samples: running statistics (eval) or batch statistics (train)")
    args = ap.parse_args(argv)

    sets = list(args.set)
    if args.steps is not None:
        sets.append(f"train.steps={args.steps}")
    if args.seed is not None:
        sets.append(f"train.seed={args.seed}")
    try:
        cfg = gt.load_config(args.preset, sets)
    except gt.ConfigError as e:
        print(f"train_pytorch: {e}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        print("train_pytorch: --device cuda but no CUDA device", file=sys.stderr)
        return 2

    steps = cfg["train"]["steps"]
    log = cfg.get("log", {})
    log_every = int(log.get("log_every", 50))
    sample_every = int(log.get("sample_every", 0))
    n_grid = int(log.get("grid", 64))
    data_name = args.data or cfg.get("data", {}).get("path") or cfg.get("data", {}).get("name", "synthetic")
    try:
        trainer = gt.Trainer(cfg, device)
        images, labels, desc = gt.load_labeled_images(data_name, trainer.image_shape, seed=trainer.seed)
        trainer.set_images(images, labels, desc)
    except gt.ConfigError as e:
        print(f"train_pytorch: {e}", file=sys.stderr)
        return 2

    out = Path(args.out)
    (out / "samples").mkdir(parents=True, exist_ok=True)
    resolved = {k: v for k, v in cfg.items() if not k.startswith("_")}
    with open(out / "config.json", "w") as f:
        json.dump({"source": cfg["_source"], "set": sets, "data": desc, "device": str(device),
                   "torch_version": torch.__version__, "sample_mode": args.sample_mode, "config": resolved}, f, indent=2)

    ncol, fixed_labels = 8, {}
    if trainer.classes > 0:  # one row per class: ncol images of class 0, then of class 1, ...
        ncol = -(-n_grid // trainer.classes)
        n_grid = ncol * trainer.classes
        fixed_labels = trainer.label_inputs(torch.arange(trainer.classes, device=device).repeat_interleave(ncol))
    fixed_gen = torch.Generator(device=device)
    fixed_gen.manual_seed(trainer.seed + 5)
    if trainer.latent == "normal":
        fixed_z = torch.randn(n_grid, trainer.z_dim, generator=fixed_gen, device=device)
    else:
        fixed_z = torch.rand(n_grid, trainer.z_dim, generator=fixed_gen, device=device) * 2 - 1

    def samples(path):
        G = trainer.G_eager
        G.train(args.sample_mode == "train")
        with torch.no_grad():
            # In train mode batch norm would also update its running statistics; keep them.
            saved = {k: v.clone() for k, v in G.state_dict().items()} if args.sample_mode == "train" else None
            x = G(fixed_z, **fixed_labels)
            if saved is not None:
                G.load_state_dict(saved)
        G.train(True)
        gt.save_grid(x, path, ncol=ncol)

    print(f"train_pytorch: {cfg['_source']} on {device}, data {desc} ({images.shape[0]} images), "
          f"G {gt.count_params(trainer.G_eager):,} params, D {gt.count_params(trainer.D_eager):,} params, "
          f"{steps} steps of batch {trainer.batch}", flush=True)
    t0 = time.perf_counter()
    metrics_tmp = out / "metrics.jsonl.tmp"
    with open(metrics_tmp, "w") as mf:
        for step in range(1, steps + 1):
            m = trainer.train_step()
            if step % log_every == 0 or step == steps or step == 1:
                rec = {"step": step, **{k: round(float(v), 6) for k, v in m.items()},
                       "elapsed_s": round(time.perf_counter() - t0, 3)}
                mf.write(json.dumps(rec) + "\n")
                mf.flush()
                rate = step * trainer.batch / max(rec["elapsed_s"], 1e-9)
                shown = "  ".join(f"{LOG_NAMES.get(k, k)} {rec[k]:.4g}" for k in m)
                print(f"step {step:6d}/{steps}  {shown}  {rate:.0f} img/s", flush=True)
            if sample_every and step % sample_every == 0:
                samples(out / "samples" / f"step_{step:06d}.png")
    os.replace(metrics_tmp, out / "metrics.jsonl")
    samples(out / "samples_final.png")
    gt.write_safetensors(out / "checkpoint_final.safetensors", gt.checkpoint_state(trainer.G_eager, trainer.D_eager),
                         {"format": "pt", "producer": "tools/train_pytorch.py", "preset": cfg["_source"], "step": str(steps)})
    print(f"train_pytorch: wrote {out}/samples_final.png, metrics.jsonl, checkpoint_final.safetensors "
          f"({time.perf_counter() - t0:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
