#!/usr/bin/env python3
"""Compares generators trained by gancu and by the PyTorch peer on the same preset: how good and
how varied their samples are, measured the same way for both (docs/quality.md).

Every checkpoint (gancu's `checkpoints/step_N.safetensors`, or the peer's
`checkpoint_final.safetensors`: both hold G.* under the same names and PyTorch layouts) is loaded
into the same PyTorch generator built from the preset (tools/gancu_torch.py), and each draws
--n samples from the same noise, with batch statistics in batch norm (gancu's run.sample_bn =
"batch"). Loading gancu's checkpoint into PyTorch is itself a check of the checkpoint format.

Measures, on pixels of the real test images and of the samples:
  fd_pca      Frechet distance between Gaussians fitted to the samples and to real images, on the
              first 64 principal components of the real images (a pixel-space analogue of FID,
              NOT comparable to Inception FID; lower is better)
  coverage    the real images are split into 20 k-means clusters (on the same components); the
              KL divergence of the samples' cluster histogram from the real one (lower is
              better) and the number of clusters that get at least half their real share
  diversity   mean pairwise distance between samples over that between real images (1 is the
              real spread; far below 1 is collapse)
Also the mean nearest-real distance (how far samples are from any real image) for orientation.

Example:
  /usr/bin/python3 tools/compare_quality.py --preset dcgan --data fashion-mnist \\
      --run gancu=runs/quality/gancu-dcgan/checkpoints/step_00001500.safetensors \\
      --run pytorch=runs/quality/torch-dcgan/checkpoint_final.safetensors
"""
import argparse
import json
import sys

import numpy as np
import torch

import gancu_torch as gt


def pca_basis(x, k):
    mean = x.mean(0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    return mean, vt[:k]


def frechet(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.linalg.eigvalsh(root1 @ s2 @ root1)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(cross, 0, None)).sum())


def kmeans(x, k, iters=50, seed=0):
    rng = np.random.default_rng(seed)
    centres = x[rng.choice(len(x), k, replace=False)]
    for _ in range(iters):
        labels = assign(x, centres)
        for j in range(k):
            if (labels == j).any():
                centres[j] = x[labels == j].mean(0)
    return centres


def assign(x, centres):
    d = (x ** 2).sum(1)[:, None] - 2 * x @ centres.T + (centres ** 2).sum(1)[None]
    return d.argmin(1)


def mean_pairwise(x, n=1000):
    x = x[:n]
    d = (x ** 2).sum(1)[:, None] - 2 * x @ x.T + (x ** 2).sum(1)[None]
    return float(np.sqrt(np.clip(d, 0, None)).sum() / (len(x) * (len(x) - 1)))


def sample(cfg, ckpt, n, seed):
    G, D, image = gt.build_models(cfg)
    gt.apply_checkpoint(G, D, gt.load_gancu_checkpoint(ckpt), ckpt)  # raises on a missing parameter
    G.train()  # batch statistics, as gancu samples by default; running stats are not used
    gen = torch.Generator().manual_seed(seed)
    z_dim = cfg["model"]["z_dim"]
    out = []
    with torch.no_grad():
        for i in range(0, n, 64):
            m = min(64, n - i)
            z = torch.randn(m, z_dim, generator=gen) if cfg["model"]["latent"] == "normal" \
                else torch.rand(m, z_dim, generator=gen) * 2 - 1
            out.append(gt.images_to_u8(G(z)))
    return np.concatenate(out).reshape(n, -1).astype(np.float64) / 255.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", required=True)
    ap.add_argument("--data", required=True, help="real images: name or folder (the test split is used)")
    ap.add_argument("--run", action="append", required=True, help="NAME=CHECKPOINT (repeatable)")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    cfg = gt.load_config(args.preset)
    _, _, image = gt.build_models(cfg)
    real_u8, _ = gt.load_images(args.data, image, split="test", quiet=True)
    real = real_u8.reshape(len(real_u8), -1).astype(np.float64) / 255.0
    mean, basis = pca_basis(real, 64)
    real_f = (real - mean) @ basis.T
    centres = kmeans(real_f.copy(), 20)
    real_hist = np.bincount(assign(real_f, centres), minlength=20) / len(real_f)
    real_spread = mean_pairwise(real)
    results = {"preset": args.preset, "data": args.data, "n": args.n, "real_images": len(real)}
    rows = []
    for spec in args.run:
        name, _, path = spec.partition("=")
        x = sample(cfg, path, args.n, args.seed)
        f = (x - mean) @ basis.T
        hist = np.bincount(assign(f, centres), minlength=20) / len(f)
        kl = float((hist * np.log(np.clip(hist, 1e-12, None) / real_hist)).sum())
        covered = int((hist >= 0.5 * real_hist).sum())
        nn = np.sqrt(np.clip((x[:500] ** 2).sum(1)[:, None] - 2 * x[:500] @ real.T + (real ** 2).sum(1)[None], 0, None)).min(1)
        r = {"run": name, "checkpoint": path, "fd_pca": frechet(f, real_f), "kl_clusters": kl,
             "clusters_covered": covered, "diversity": mean_pairwise(x) / real_spread,
             "nearest_real": float(nn.mean())}
        rows.append(r)
        results[name] = r
    # The real test images against themselves (two random halves: MNIST's test set is ordered by
    # writer population, so its first and second halves differ): what "as good as real" scores.
    order = np.random.default_rng(args.seed).permutation(len(real_f))
    half = len(real_f) // 2
    results["real_halves_fd_pca"] = frechet(real_f[order[:half]], real_f[order[half:]])
    print(f"{args.preset} on {args.data}: {args.n} samples each, against {len(real)} real test images")
    print("| run | FD (PCA-64, pixels) | KL of 20-cluster histogram | clusters covered (of 20) | diversity (1 = real) | mean nearest-real distance |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['run']} | {r['fd_pca']:.2f} | {r['kl_clusters']:.3f} | {r['clusters_covered']} | {r['diversity']:.3f} | {r['nearest_real']:.2f} |")
    print(f"| real (two random halves of the test set) | {results['real_halves_fd_pca']:.2f} | | | 1 | |")
    if args.json:
        with open(args.json, "w") as fp:
            json.dump(results, fp, indent=2)


if __name__ == "__main__":
    sys.exit(main())
