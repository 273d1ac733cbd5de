#!/usr/bin/env python3
"""Times gancu's training iteration in PyTorch: the PyTorch side of docs/benchmarks.

One iteration = train.d_steps discriminator steps + one generator step, exactly
gancu_torch.Trainer.train_step for the config's train.loss (batch gather from an on-device uint8
pool and normalization, noise, G forward, D real/fake forward+backward, the objective's penalty
where it has one (wgan-gp, dragan: double backward through torch.autograd.grad; r1 on the real
pass), D's optimizer step and clipping (wgan), D forward+backward into G, G's optimizer step).
Any objective and optimizer of the config (--set train.loss=wgan-gp, --set optim.d.name=rmsprop);
the JSON records train.loss as "loss" and the overrides as "set". torch.compile cannot double
backward through a compiled D: with a penalty the compiled mode reports a failure.
images/s = batch / (seconds per iteration). Timing: `--warmup` iterations, then `--repeats`
runs of `--steps` iterations each; the median run is reported. On CUDA each run is timed with
CUDA events and synchronized; on the CPU with perf_counter. Before timing, one iteration's losses
are checked to be finite (a benchmark that computes garbage is not reported).

Data: synthetic uint8 images of the preset's image shape (10,000 of them, on the device), since
throughput does not depend on pixel values; `--data NAME|PATH` uses real images instead.

On CUDA, TF32 is off for matmuls and convolutions (gancu computes in fp32 by default) unless
--tf32, and cudnn.benchmark is on.

CPU threads: --threads sets torch.set_num_threads. Torch builds whose BLAS is the system's
(Debian's python3-torch: BLAS_INFO=generic, i.e. OpenBLAS through libblas.so.3) call a BLAS that
starts threads of its own, which fight torch's OpenMP threads for the cores: on a 2-core machine
this made mlp 1.5-4x slower and its timings vary 3x between runs. So OPENBLAS_NUM_THREADS is set
to --blas-threads (default 1) before torch is loaded; builds with MKL (PyPI wheels) are not
affected. The JSON records torch_blas and blas_threads.

Examples:
  /usr/bin/python3 tools/bench_pytorch.py --preset mlp dcgan --device cpu --batch 64 --threads 2
  /usr/bin/python3 tools/bench_pytorch.py --preset mlp --set train.loss=wgan-gp --batch 64 256 --threads 2
  python3 tools/bench_pytorch.py --preset dcgan --device cuda --batch 64 256 1024 --compile --json
"""

import argparse
import json
import math
import os
import re
import statistics
import sys
import time
from pathlib import Path


def _blas_threads_from_argv(argv) -> str:
    for i, a in enumerate(argv):
        if a == "--blas-threads" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--blas-threads="):
            return a.split("=", 1)[1]
    return "1"


# Before torch (and its BLAS) is loaded; see the module docstring.
if __name__ == "__main__":
    os.environ["OPENBLAS_NUM_THREADS"] = _blas_threads_from_argv(sys.argv[1:])

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gancu_torch as gt  # noqa: E402
import torch  # noqa: E402


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", nargs="+", required=True, help="preset names or TOML files (comma-separated also works)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--batch", nargs="+", type=int, help="batch sizes (default: the preset's train.batch)")
    ap.add_argument("--steps", type=int, default=20, help="timed iterations per repeat (default 20)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed iterations first (default 5; at least 10 with --compile)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs; the median is reported (default 3)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's default)")
    ap.add_argument("--blas-threads", type=int, default=1,
                    help="OPENBLAS_NUM_THREADS for torch builds on the system OpenBLAS (default 1; see above)")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile(mode='max-autotune') on G and D")
    ap.add_argument("--compile-only", action="store_true", help="time only the compiled mode")
    ap.add_argument("--compile-mode", default="max-autotune", help="torch.compile mode (default max-autotune)")
    ap.add_argument("--data", default=None, help="real images (data-set name, directory or IDX file) instead of synthetic")
    ap.add_argument("--channels-last", action="store_true", help="convert G and D to channels_last memory format")
    ap.add_argument("--tf32", action="store_true", help="allow TF32 on CUDA (off by default)")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="config overrides, like gancu's")
    ap.add_argument("--json", action="store_true", help="print one JSON object per (preset, device, mode, batch)")
    args = ap.parse_args(argv)
    args.preset = [p for item in args.preset for p in item.split(",") if p]
    if args.steps < 1 or args.repeats < 1 or args.warmup < 0:
        ap.error("--steps and --repeats must be >= 1, --warmup >= 0")
    if args.batch and min(args.batch) < 2:
        ap.error("--batch must be >= 2 (batch norm needs two samples)")
    if args.compile_only:
        args.compile = True
    return args


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_run(trainer, steps, device) -> float:
    """Seconds for `steps` iterations."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        sync(device)
        start.record()
        for _ in range(steps):
            trainer.train_step()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000.0
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    return time.perf_counter() - t0


def torch_blas() -> str:
    """BLAS_INFO of torch's build (mkl, open, generic = whatever libblas.so.3 the system links)."""
    m = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    return m.group(1) if m else "unknown"


def bench_one(preset, batch, mode, args, device, threads):
    rec = {"impl": "pytorch", "mode": mode, "preset": preset, "device": device.type, "batch": batch,
           "threads": threads, "images_per_s": None, "ms_per_iter": None, "torch_version": torch.__version__}
    sets = list(args.set) + ([f"train.batch={batch}"] if batch is not None else [])
    cfg = gt.load_config(preset, sets)
    rec["batch"] = batch = cfg["train"]["batch"]
    rec["loss"] = cfg["train"]["loss"]
    if args.set:
        rec["set"] = list(args.set)
    rec["d_steps"] = cfg["train"]["d_steps"]
    if mode == "compile" and not gt.compile_available():
        rec["status"] = f"unavailable: torch {torch.__version__} has no torch.compile"
        return rec
    trainer = gt.Trainer(cfg, device)
    if args.data:
        images, labels, desc = gt.load_labeled_images(args.data, trainer.image_shape, quiet=args.json)
        rec["data"] = desc
    else:
        c, h, w = trainer.image_shape
        images, labels, desc = gt.load_labeled_images("synthetic", trainer.image_shape, seed=trainer.seed)
        rec["data"] = f"synthetic {h}x{w}x{c}"
    trainer.set_images(images, labels, desc)
    if args.channels_last:
        trainer.G_eager.to(memory_format=torch.channels_last)
        trainer.D_eager.to(memory_format=torch.channels_last)
        rec["memory_format"] = "channels_last"
    if device.type == "cuda":
        rec["tf32"] = bool(args.tf32)
        rec["gpu"] = torch.cuda.get_device_name(device)
    else:
        rec["cpu"] = gt.describe_cpu()
        rec["torch_blas"] = torch_blas()
        rec["blas_threads"] = os.environ.get("OPENBLAS_NUM_THREADS")
    warmup = args.warmup
    if mode == "compile":
        rec["compile_mode"] = args.compile_mode
        try:
            trainer.use_modules(torch.compile(trainer.G_eager, mode=args.compile_mode),
                                torch.compile(trainer.D_eager, mode=args.compile_mode))
        except Exception as e:  # noqa: BLE001 - report, keep benchmarking the rest
            rec["status"] = f"failed: {type(e).__name__}: {e}"
            return rec
        warmup = max(warmup, 10)
    try:
        t0 = time.perf_counter()
        m = trainer.train_step()
        losses = {k: float(v) for k, v in m.items()}
        for _ in range(max(warmup - 1, 0)):
            trainer.train_step()
        sync(device)
        rec["warmup_s"] = round(time.perf_counter() - t0, 3)
        if not all(math.isfinite(v) for v in losses.values()):
            rec["status"] = f"failed: non-finite losses in the first iteration {losses}"
            return rec
        rec["check"] = {k: round(v, 6) for k, v in losses.items()}
        runs = [time_run(trainer, args.steps, device) for _ in range(args.repeats)]
    except Exception as e:  # noqa: BLE001
        if mode != "compile":
            raise
        rec["status"] = f"failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        return rec
    sec = statistics.median(runs) / args.steps
    rec["ms_per_iter"] = round(sec * 1000.0, 4)
    rec["images_per_s"] = round(batch / sec, 2)
    rec["runs_ms_per_iter"] = [round(r / args.steps * 1000.0, 4) for r in runs]
    rec["steps"], rec["repeats"], rec["warmup"] = args.steps, args.repeats, warmup
    rec["status"] = "ok"
    return rec


def main(argv=None):
    args = parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            sys.exit("bench_pytorch: --threads must be >= 1")
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench_pytorch: --device cuda but torch.cuda.is_available() is false", file=sys.stderr)
        return 1
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
        torch.backends.cudnn.benchmark = True
    modes = (["eager"] if not args.compile_only else []) + (["compile"] if args.compile else [])
    failed = False
    for preset in args.preset:
        for batch in args.batch or [None]:
            for mode in modes:
                try:
                    rec = bench_one(preset, batch, mode, args, device, threads)
                except gt.ConfigError as e:
                    print(f"bench_pytorch: {e}", file=sys.stderr)
                    return 2
                if rec.get("status") != "ok" and not rec.get("status", "").startswith("unavailable"):
                    failed = True
                if args.json:
                    print(json.dumps(rec), flush=True)
                elif rec.get("status") == "ok":
                    print(f"{rec['preset']:8s} {rec['device']} {mode:7s} batch {rec['batch']:5d}: "
                          f"{rec['images_per_s']:10.1f} images/s  {rec['ms_per_iter']:9.3f} ms/iter  "
                          f"({threads} threads, torch {torch.__version__})", flush=True)
                else:
                    print(f"{rec['preset']:8s} {rec['device']} {mode:7s} batch {rec['batch']:5d}: {rec['status']}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
