#!/usr/bin/env python3
"""Writes the seed inputs of gancu's fuzzers into tests/fuzz/corpus/NAME/ (tools/fuzz.sh runs them).

Small valid files of each format and a few broken ones, so that libFuzzer starts from inputs that
reach deep into each reader. The safetensors seed is a checkpoint that gancu itself wrote: pass
it with --checkpoint (tools/fuzz.sh makes one with the built gancu when the folder is empty).
"""
import argparse
import gzip
import io
import json
import pathlib
import struct
import zlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "fuzz" / "corpus"


def put(name, file, data):
    folder = CORPUS / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / file).write_bytes(data if isinstance(data, bytes) else data.encode())


def idx_images(n, h, w, c=None):
    dims = [n, h, w] + ([c] if c else [])
    head = bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    return head + bytes((i * 37) % 256 for i in range(n * h * w * (c or 1)))


def idx_labels(n):
    return bytes([0, 0, 8, 1]) + struct.pack(">I", n) + bytes(i % 10 for i in range(n))


def png(h, w, color_type, channels, bit_depth=8, palette=None):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + bytes((x * 29 + y * 7) % 256 for x in range(w * channels)) for y in range(h))
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0))
    if palette:
        out += chunk(b"PLTE", palette)
    return out + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--checkpoint", help="a small checkpoint gancu wrote, as the safetensors seed")
    args = ap.parse_args()

    put("idx", "images_raw.idx", idx_images(3, 4, 5))
    put("idx", "images_rgb.idx", idx_images(2, 3, 3, 3))
    put("idx", "labels_raw.idx", idx_labels(7))
    put("idx", "images.idx.gz", gzip.compress(idx_images(3, 4, 5), mtime=0))
    put("idx", "labels.idx.gz", gzip.compress(idx_labels(7), mtime=0))
    put("idx", "truncated.idx", idx_images(3, 4, 5)[:30])
    # fuzz_idx_gzip compresses its input itself; the last byte picks a cut stream (odd) or not.
    put("idx_gzip", "images", idx_images(3, 4, 5) + b"\x00")
    put("idx_gzip", "labels_cut", idx_labels(7) + b"\x01")
    put("idx_gzip", "rgb", idx_images(2, 3, 3, 3) + b"\x00")

    record = bytes([3]) + bytes((i * 11) % 256 for i in range(3072))
    put("cifar", "one_record.bin", record)
    put("cifar", "two_records.bin", record + bytes([9]) + record[1:])
    put("cifar", "bad_label.bin", bytes([10]) + record[1:])

    for preset in sorted((ROOT / "configs" / "presets").glob("*.toml")):
        put("config", preset.name, preset.read_text())
        text = preset.read_text()
        for key in ("generator", "discriminator"):
            start = text.find(f"{key} = [")
            if start < 0:
                continue
            end = text.find("]\n", start)
            body = text[text.find("[", start) + 1:end]
            layers = [s.strip().strip('"') for s in body.replace("\n", " ").split('",') if s.strip()]
            pick = b"\x00" if key == "generator" else (b"\x02" if "32" in preset.name or "cifar" in text else b"\x01")
            put("layers", f"{preset.stem}_{key}", pick + "\n".join(layers).encode())
    put("layers", "graph", b"\x01" + b"conv out=4 k=3 s=1 p=1 name=a\nlrelu\nconv out=4 k=3 s=1 p=1 in=a\n"
        b"add in=a,2\nflatten\nlinear out=1")
    # Inception's layers: resize, per-axis kernels and padding, pooling without the padding count.
    put("layers", "inception", b"\x02" + b"resize h=19 w=17\nconv out=4 kh=1 kw=7 ph=0 pw=3 bias=false\n"
        b"conv out=4 kh=7 kw=1 ph=3 pw=0\navgpool k=3 s=1 p=1 include_pad=false\nconvT out=2 kh=1 kw=3 pw=1\n"
        b"maxpool k=3 s=2\nflatten\nlinear out=1")
    put("config", "small.toml", '[data]\nname = "synthetic:8x8x1:64"\n[model]\nz_dim = 4\n'
        'generator = ["linear out=64", "tanh", "reshape h=8 w=8 c=1"]\n'
        'discriminator = ["flatten", "linear out=1"]\n[train]\nloss = "wgan-gp"\nbatch = 8\n')

    for i, s in enumerate(["train.batch=32", "optim.d.lr=1e-4", "data.name=mnist", "train.loss=hinge",
                           'model.generator=["linear out=784", "tanh", "reshape h=28 w=28 c=1"]',
                           "run.cuda_graph=false", "log.grid=16", "model.latent=uniform", "train.seed=7"]):
        put("set", f"set{i}", s)

    lines = [json.dumps({"step": s, "loss_d": 1.3 - s * 0.01, "loss_g": 0.7, "time_s": s * 0.5}) for s in (1, 2, 3)]
    step = struct.pack("<q", 2)
    put("metrics", "whole", step + ("\n".join(lines) + "\n").encode())
    put("metrics", "torn", step + ("\n".join(lines) + "\n" + lines[0][:17]).encode())
    put("metrics", "eval", step + (json.dumps({"step": 5, "loss_d": 1.0, "fid": 3.5, "modes": 8}) + "\n").encode())

    put("png", "gray.png", png(4, 5, 0, 1))
    put("png", "gray_alpha.png", png(3, 3, 4, 2))
    put("png", "rgb.png", png(4, 4, 2, 3))
    put("png", "rgba.png", png(2, 6, 6, 4))
    put("png", "palette.png", png(2, 2, 3, 1, palette=bytes(range(48))))
    # JPEG: baseline gray and RGB, progressive, CMYK (converted to RGB), and one cut short.
    try:
        from PIL import Image

        def jpeg(mode, size, **kw):
            out = io.BytesIO()
            im = Image.new(mode, size)
            im.putdata([tuple((x * 7 + k * 50) % 256 for k in range(len(mode))) if len(mode) > 1 else (x * 7) % 256
                        for x in range(size[0] * size[1])])
            im.save(out, "JPEG", **kw)
            return out.getvalue()

        put("jpeg", "gray.jpg", jpeg("L", (8, 5)))
        put("jpeg", "rgb.jpg", jpeg("RGB", (9, 7), quality=90))
        put("jpeg", "progressive.jpg", jpeg("RGB", (16, 16), progressive=True))
        put("jpeg", "cmyk.jpg", jpeg("CMYK", (4, 4)))
        put("jpeg", "truncated.jpg", jpeg("RGB", (16, 16))[:200])
    except ImportError:
        print("fuzz_seeds: PIL missing: no JPEG seeds")

    if args.checkpoint:
        put("safetensors", "checkpoint.safetensors", pathlib.Path(args.checkpoint).read_bytes())
    header = json.dumps({"__metadata__": {"format": "x"}, "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                         "b": {"dtype": "I64", "shape": [], "data_offsets": [8, 16]}}).encode()
    put("safetensors", "two_tensors.safetensors", struct.pack("<Q", len(header)) + header + bytes(16))


if __name__ == "__main__":
    main()
