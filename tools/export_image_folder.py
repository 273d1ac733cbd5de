#!/usr/bin/env python3
"""Writes an IDX data set (MNIST, Fashion-MNIST) out as a folder of images, one sub-folder per
class: an image folder the project can make on any machine, for `gancu train --data FOLDER`.

Each image is converted to RGB and resized to --size with PIL's bicubic filter (the 28x28 digits
and garments become 64x64x3 for dcgan64), then saved as PNG, JPEG, or both alternately (--format
mixed: the reader's two decoders). Class names come from --classes (Fashion-MNIST's by default).

  /usr/bin/python3 tools/export_image_folder.py --images /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz \\
      --labels /usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz --n 10000 --size 64 \\
      --format mixed --out runs/fashion-mnist-64
"""

import argparse
import gzip
import struct
from pathlib import Path

import numpy as np
from PIL import Image

FASHION_CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                   "ankle-boot"]


def read_idx(path: str) -> np.ndarray:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", required=True)
    ap.add_argument("--labels", required=True)
    ap.add_argument("--n", type=int, default=10000, help="the first N images")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--format", choices=["png", "jpg", "mixed"], default="png")
    ap.add_argument("--classes", nargs="+", default=FASHION_CLASSES)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    images, labels = read_idx(args.images)[: args.n], read_idx(args.labels)[: args.n]
    out = Path(args.out)
    for i, (im, label) in enumerate(zip(images, labels)):
        folder = out / f"{int(label)}-{args.classes[int(label)]}"  # the index first: sorted as the labels
        folder.mkdir(parents=True, exist_ok=True)
        pil = Image.fromarray(im).convert("RGB").resize((args.size, args.size), Image.BICUBIC)
        ext = args.format if args.format != "mixed" else ("png" if i % 2 == 0 else "jpg")
        pil.save(folder / f"{i:06d}.{ext}", quality=95) if ext == "jpg" else pil.save(folder / f"{i:06d}.png")
    print(f"wrote {len(images)} images of {args.size}x{args.size}x3 into {out} ({len(set(labels.tolist()))} classes)")


if __name__ == "__main__":
    main()
