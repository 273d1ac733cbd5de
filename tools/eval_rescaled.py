#!/usr/bin/env python3
"""Judges 64x64x3 samples with a classifier of 28x28x1 images: a run trained on an image folder
made from Fashion-MNIST (tools/export_image_folder.py) scored by the shipped Fashion-MNIST
classifier, until gancu has Inception features.

It draws --n samples from the run (`gancu sample --out FILE.idx`), brings each back to the
classifier's input as the export came from it in reverse (PIL: convert("L"), resize to 28x28 with
the antialiased bilinear filter), writes them as IDX and runs `gancu eval --samples`. With --real
FOLDER it does the same for --n images of the folder itself: the values a perfect generator would
get through the same round trip.

  /usr/bin/python3 tools/eval_rescaled.py --run runs/dcgan64-fm64 --real runs/fashion-mnist-64 --n 2000
"""

import argparse
import json
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent


def read_idx(path: Path) -> np.ndarray:
    b = path.read_bytes()
    nd = b[3]
    dims = struct.unpack(">" + "I" * nd, b[4:4 + 4 * nd])
    return np.frombuffer(b, np.uint8, offset=4 + 4 * nd).reshape(dims)


def write_idx(path: Path, images: np.ndarray) -> None:
    n, h, w = images.shape
    path.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">III", n, h, w) + images.astype(np.uint8).tobytes())


def to_classifier_input(images: np.ndarray, size: int) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(im).convert("L").resize((size, size), Image.BILINEAR))
                     for im in images])


def evaluate(gancu: str, images: np.ndarray, classifier: str, tmp: Path, name: str) -> dict:
    path = tmp / f"{name}.idx"
    write_idx(path, images)
    out = subprocess.run([gancu, "eval", "--samples", str(path), "--classifier", classifier, "--json"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"gancu eval failed: {out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gancu", default=str(REPO_ROOT / "build" / "gancu"))
    ap.add_argument("--run", required=True)
    ap.add_argument("--real", help="the image folder the run trained on")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--size", type=int, default=28)
    ap.add_argument("--classifier", default=str(REPO_ROOT / "models" / "fashion-mnist_classifier.safetensors"))
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        subprocess.run([args.gancu, "sample", "--run", args.run, "--n", str(args.n), "--out", str(tmp / "s.idx")],
                       check=True, capture_output=True)
        results = {"samples": evaluate(args.gancu, to_classifier_input(read_idx(tmp / "s.idx"), args.size),
                                       args.classifier, tmp, "samples")}
        if args.real:
            files = sorted(p for p in Path(args.real).rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
            rng = np.random.default_rng(0)
            pick = rng.choice(len(files), min(args.n, len(files)), replace=False)
            real = np.stack([np.asarray(Image.open(files[i]).convert("RGB")) for i in pick])
            results["real"] = evaluate(args.gancu, to_classifier_input(real, args.size), args.classifier, tmp, "real")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
