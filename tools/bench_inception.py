#!/usr/bin/env python3
"""Inception features per second: gancu's Inception-v3 (`gancu eval --inception`) against
torchvision's inception_v3 on the same images, the same threads and the same batch, in one run.

Both networks get the same random weights (the FID variant's structure needs pytorch-fid's blocks;
the speed of the two variants is the same, so torchvision's is measured). gancu's rate is the one
its own progress line reports for the featurization (weights loading and process start excluded);
torchvision's is timed around its forward passes. Images are 32x32x3 (CIFAR-10's size), resized to
299x299 inside both networks.

  /usr/bin/python3 tools/bench_inception.py --n 10000 --threads 2 --out docs/benchmarks/inception_cpu.jsonl
"""

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gancu_torch as gt  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def torchvision_rate(model, images: np.ndarray, batch: int) -> float:
    x_all = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255 * 2 - 1
    start = time.perf_counter()
    with torch.no_grad():
        for b in range(0, len(images), batch):
            x = F.interpolate(x_all[b:b + batch], size=(299, 299), mode="bilinear", align_corners=False)
            model(x)
    return len(images) / (time.perf_counter() - start)


def gancu_rate(binary: Path, weights: Path, images: np.ndarray, threads: int, tmp: str) -> float:
    path = Path(tmp) / "images.idx"
    gt.write_idx_u8(path, images)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    run = subprocess.run([str(binary), "eval", "--samples", str(path), "--inception", str(weights), "--backend", "cpu",
                          "--threads", str(threads), "--json"], capture_output=True, text=True, env=env)
    if run.returncode != 0:
        raise SystemExit(f"bench_inception: gancu eval failed:\n{run.stderr}")
    rates = re.findall(r"featurized (\d+)/(\d+) images, ([0-9.]+) images/s", run.stderr)
    if not rates:
        raise SystemExit(f"bench_inception: no progress line from gancu eval:\n{run.stderr}")
    return float(rates[-1][2])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10000, help="images featurized by each (default 10000)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16, help="images per forward pass (gancu's default is 16)")
    ap.add_argument("--binary", type=Path, default=ROOT / os.environ.get("GANCU_BUILD_DIR", "build") / "gancu")
    ap.add_argument("--out", type=Path, help="append the result as one JSON line")
    args = ap.parse_args(argv)
    if args.n <= 256:
        raise SystemExit("bench_inception: --n must exceed 256 (gancu reports its rate per 256 images)")
    torch.set_num_threads(args.threads)
    from torchvision.models import inception_v3
    torch.manual_seed(0)
    model = inception_v3(weights=None, aux_logits=False, init_weights=True, transform_input=False).eval()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.n, 32, 32, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        pth, weights = Path(tmp) / "w.pth", Path(tmp) / "w.safetensors"
        torch.save(model.state_dict(), pth)
        subprocess.run([sys.executable, str(ROOT / "tools" / "convert_inception.py"), str(pth), str(weights)],
                       check=True, capture_output=True)
        ours = gancu_rate(args.binary, weights, images, args.threads, tmp)
    theirs = torchvision_rate(model, images, args.batch)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    row = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "commit": commit,
           "cpu": platform.processor() or platform.machine(), "threads": args.threads, "images": args.n,
           "batch": args.batch, "gancu_images_per_s": round(ours, 2),
           "torchvision_images_per_s": round(theirs, 2), "ratio": round(ours / theirs, 3),
           "torch": torch.__version__}
    print(f"Inception-v3 features, {args.n} images of 32x32x3 -> 299x299, {args.threads} threads, batch {args.batch}")
    print(f"  gancu        {ours:8.2f} images/s")
    print(f"  torchvision  {theirs:8.2f} images/s")
    print(f"  ratio        {ours / theirs:8.3f}x")
    if args.out:
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
