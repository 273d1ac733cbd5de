#!/usr/bin/env python3
"""The evaluation numbers of `gancu eval --samples`, computed independently with PyTorch and
numpy: the peer that checks gancu's classifier forward pass, Frechet distance and k-NN metrics.

The shipped classifier file is loaded into a PyTorch network built from the layer strings in its
metadata (gancu_torch.build_network); features are the output of its feature layer. The metrics
are written here from their papers' definitions with dense numpy arrays (no tiling, double
precision), so they share no code with gancu.

    /usr/bin/python3 tools/eval_pytorch.py --classifier models/fashion-mnist_classifier.safetensors \
        --samples samples.idx --real /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz [--json]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gancu_torch as gt  # noqa: E402


ACTIVATIONS = ("relu", "lrelu", "tanh", "sigmoid")


def load_classifier(path: str) -> tuple[torch.nn.Sequential, int, dict]:
    tensors, meta = gt.read_safetensors(path)
    layers = json.loads(meta["layers"])
    h, w, c = (int(v) for v in meta["input"].split("x"))
    net, _, parsed = gt.build_network(layers, ("image", c, h, w), "C")
    state = {name[len("C."):]: torch.from_numpy(np.array(t)) for name, t in tensors.items()}
    missing = set(net.state_dict()) - set(state)
    if missing:
        raise gt.ConfigError(f"{path}: lacks {sorted(missing)}")
    net.load_state_dict(state)
    net.eval()
    feature_layer = int(meta["feature_layer"])
    # gancu runs an activation that directly follows a linear, conv or batch-norm layer in that
    # layer's epilogue, and the layer's output is then the activated one: so are its features.
    if (feature_layer + 1 < len(parsed) and parsed[feature_layer][0] in ("linear", "conv", "convT", "bn")
            and parsed[feature_layer + 1][0] in ACTIVATIONS):
        feature_layer += 1
    return net, feature_layer, meta


@torch.no_grad()
def judge(net: torch.nn.Sequential, feature_layer: int, images_u8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and features of uint8 images [n, h, w] or [n, h, w, c]."""
    if images_u8.ndim == 3:
        images_u8 = images_u8[..., None]
    probs, feats = [], []
    for begin in range(0, len(images_u8), 500):
        x = gt.normalize_u8(torch.from_numpy(np.array(images_u8[begin:begin + 500])))
        x = x.permute(0, 3, 1, 2)
        for i, layer in enumerate(net):
            x = layer(x)
            if i == feature_layer:
                feats.append(x.double().numpy())
        probs.append(torch.softmax(x.double(), dim=1).numpy())
    return np.concatenate(probs), np.concatenate(feats)


def class_statistics(probs: np.ndarray) -> dict:
    n, classes = probs.shape
    hist = np.bincount(probs.argmax(axis=1), minlength=classes)
    share = hist / n
    kl = float(sum(p * math.log(p * classes) for p in share if p > 0))
    marginal = probs.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(probs > 0, probs * (np.log(probs) - np.log(marginal)), 0.0)
    score = float(math.exp(terms.sum(axis=1).mean()))
    return {"histogram": hist.tolist(), "modes": int((hist > 0).sum()), "kl_uniform": kl, "score": score}


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # tr (S1 S2)^(1/2) from the eigenvalues of S1^(1/2) S2 S1^(1/2), which is symmetric.
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    middle = np.linalg.eigvalsh(root1 @ s2 @ root1)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(middle, 0, None)).sum())


def sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0)


def prdc(real: np.ndarray, fake: np.ndarray, k: int = 3) -> dict:
    """Kynkaanniemi et al. 2019 (precision, recall) and Naeem et al. 2020 (density, coverage)."""
    rr, ff, rf = sq_distances(real, real), sq_distances(fake, fake), sq_distances(real, fake)
    # The k-th nearest neighbour other than the point itself: index k after sorting (0 is itself).
    real_radius = np.partition(rr, k, axis=1)[:, k]
    fake_radius = np.partition(ff, k, axis=1)[:, k]
    inside_real = rf <= real_radius[:, None]  # [real, fake]: fake j within real i's ball
    precision = float(inside_real.any(axis=0).mean())
    recall = float((rf <= fake_radius[None, :]).any(axis=1).mean())
    density = float(inside_real.sum(axis=0).mean() / k)
    coverage = float((rf.min(axis=1) <= real_radius).mean())
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "density": density, "coverage": coverage}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--classifier", required=True)
    ap.add_argument("--samples", required=True, help="IDX file of uint8 samples")
    ap.add_argument("--real", required=True, help="IDX file of the reference (held-out) real images")
    ap.add_argument("--n-real", type=int, default=10000, help="first N real images (gancu's reference size)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    try:
        net, feature_layer, _ = load_classifier(args.classifier)
        fake_u8, real_u8 = gt.read_idx(args.samples), gt.read_idx(args.real)[: args.n_real]
    except (gt.ConfigError, OSError, KeyError, ValueError) as e:
        print(f"eval_pytorch: {e}", file=sys.stderr)
        return 1
    torch.set_grad_enabled(False)
    fake_p, fake_f = judge(net, feature_layer, fake_u8)
    _, real_f = judge(net, feature_layer, real_u8)
    out = {"samples": len(fake_u8), "reference": len(real_u8), **class_statistics(fake_p),
           "fid_classifier": frechet_distance(fake_f, real_f), **prdc(real_f, fake_f)}
    if args.json:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            print(f"{key:16} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
