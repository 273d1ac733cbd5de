#!/usr/bin/env python3
"""The floor of one gancu training iteration: arithmetic over peak, bytes over bandwidth.

For each preset (configs/presets/NAME.toml) and batch, counts from the layer strings:

  flops  the multiply-adds (x2) of linear, conv and transposed-conv layers in every pass of one
         iteration with d_steps = 1 (gancu's Gan::train_step):
           D forward 3x (real, fake, generator step); D backward 2x with weight gradients
           (2 products each, minus the first layer's data gradient) and 1x data gradient only;
           G forward 1x, G backward 1x with weight gradients.
  bytes  a lower bound on device-memory traffic, fp32: every pass reads each layer's input and
         weights and writes its output once (backward: reads dy, x and w, writes dx and dw); every
         elementwise layer (batch norm, activation not fused) reads and writes its tensor once per
         pass; Adam reads parameter, gradient, m, v and writes parameter, m, v (28 bytes per
         parameter). Activations fused into the layer before them cost nothing extra.

floor = max(flops / peak, bytes / bandwidth). With --bench FILE (JSON lines of `gancu bench
--json`), also prints the measured time per iteration and how far it is from the floor.

Pass the measured ceilings (tools/gpu_check.sh measures them: a large device-to-device copy and a
large GEMM); without them the H100 SXM datasheet figures are used and the table says so.

Example:
  python3 tools/floor.py --batches 64 256 1024 4096 --peak-tflops 51 --bandwidth-gbs 3000
"""
import argparse
import json
import os
import sys

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
PRESETS = os.path.join(HERE, "..", "configs", "presets")
DATASHEET = {"peak_tflops": 67.0, "bandwidth_gbs": 3350.0}  # H100 SXM: FP32 (non-tensor), HBM3
ACTIVATIONS = {"relu", "lrelu", "tanh", "sigmoid"}


def parse(spec):
    parts = spec.split()
    kind, args = parts[0], {}
    keys = {"linear": ["out", "bias"], "conv": ["out", "k", "s", "p", "bias"], "convT": ["out", "k", "s", "p", "bias"],
            "bn": ["momentum", "eps"], "lrelu": ["slope"], "dropout": ["p"], "reshape": ["h", "w", "c"],
            "maxpool": ["k", "s", "p"], "avgpool": ["k", "s", "p"]}.get(kind, [])
    for i, tok in enumerate(parts[1:]):
        k, _, v = tok.partition("=") if "=" in tok else (keys[i], "=", tok)
        args[k] = v
    return kind, args


def passes(layers, shape):
    """Per layer: (kind, fused_into_previous, in_elems, out_elems, weight_elems, macs) per sample."""
    h, w, c = shape
    out = []
    prev_fusable = False
    for spec in layers:
        kind, a = parse(spec)
        n_in = h * w * c
        if kind in ACTIVATIONS and prev_fusable:
            out.append((kind, True, n_in, n_in, 0, 0))
            prev_fusable = False
            continue
        weights = macs = 0
        if kind == "linear":
            o = int(a["out"])
            weights, macs = n_in * o + o, n_in * o
            h, w, c = 1, 1, o
        elif kind in ("conv", "convT"):
            # Per-axis kernels and padding (kh/kw, ph/pw, as Inception's 1x7 convolutions) default
            # to the square k and p.
            kh, kw = int(a.get("kh", a.get("k"))), int(a.get("kw", a.get("k")))
            s, o = int(a.get("s", 1)), int(a["out"])
            ph, pw = int(a.get("ph", a.get("p", 0))), int(a.get("pw", a.get("p", 0)))
            if kind == "conv":
                h2, w2 = (h + 2 * ph - kh) // s + 1, (w + 2 * pw - kw) // s + 1
                macs = h2 * w2 * o * kh * kw * c
            else:
                h2, w2 = (h - 1) * s - 2 * ph + kh, (w - 1) * s - 2 * pw + kw
                macs = h * w * c * kh * kw * o
            weights = kh * kw * c * o + o
            h, w, c = h2, w2, o
        elif kind == "bn":
            weights = 2 * c
        elif kind == "reshape":
            h, w, c = int(a["h"]), int(a["w"]), int(a["c"])
        elif kind == "flatten":
            h, w, c = 1, 1, h * w * c
        elif kind in ("maxpool", "avgpool"):  # no weights, no multiply-adds: memory traffic only
            k = int(a["k"])
            s, p = int(a.get("s", k)), int(a.get("p", 0))
            h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        out.append((kind, False, n_in, h * w * c, weights, macs))
        prev_fusable = kind in ("linear", "conv", "convT", "bn")
    return out, (h, w, c)


def cost(net, batch, forward, backward_w, backward_x):
    """flops and bytes of a network over the given numbers of passes."""
    flops = bytes_ = 0
    for i, (kind, fused, n_in, n_out, weights, macs) in enumerate(net):
        if fused or kind in ("reshape", "flatten"):
            continue
        act = batch * (n_in + n_out) * 4
        flops += 2 * batch * macs * forward
        bytes_ += (act + weights * 4) * forward
        data_grad = i > 0  # the first layer's input needs no gradient
        flops += 2 * batch * macs * ((1 + data_grad) * backward_w + backward_x)
        bytes_ += (batch * (n_out + n_in + (n_in if data_grad else 0)) * 4 + 2 * weights * 4) * backward_w
        bytes_ += (batch * (n_out + n_in) * 4 + weights * 4) * backward_x
    return flops, bytes_


def iteration(preset, batch):
    with open(os.path.join(PRESETS, preset + ".toml"), "rb") as f:
        cfg = tomllib.load(f)
    z = cfg["model"].get("z_dim", 100)
    g, image = passes(cfg["model"]["generator"], (1, 1, z))
    d, _ = passes(cfg["model"]["discriminator"], image)
    gf, gb = cost(g, batch, forward=1, backward_w=1, backward_x=0)
    df, db = cost(d, batch, forward=3, backward_w=2, backward_x=1)
    params = sum(x[4] for x in g) + sum(x[4] for x in d)
    return gf + df, gb + db + 28 * params


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=["mlp", "dcgan", "dcgan32"])
    ap.add_argument("--batches", nargs="+", type=int, default=[64, 256, 1024, 4096])
    ap.add_argument("--peak-tflops", type=float, help="measured arithmetic peak (the math the run uses)")
    ap.add_argument("--bandwidth-gbs", type=float, help="measured device-memory bandwidth")
    ap.add_argument("--bench", help="JSON lines of `gancu bench --json` to compare against")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    peak = args.peak_tflops or DATASHEET["peak_tflops"]
    bw = args.bandwidth_gbs or DATASHEET["bandwidth_gbs"]
    source = "measured" if args.peak_tflops and args.bandwidth_gbs else "H100 SXM datasheet (not measured)"
    measured = {}
    if args.bench:
        with open(args.bench) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    j = json.loads(line)
                    if j.get("impl") == "gancu":
                        measured[(j["preset"], j["batch"])] = j["ms_per_iter"]
    rows = []
    for p in args.presets:
        for b in args.batches:
            flops, nbytes = iteration(p, b)
            t_flop = flops / (peak * 1e12) * 1e3
            t_mem = nbytes / (bw * 1e9) * 1e3
            floor = max(t_flop, t_mem)
            row = {"preset": p, "batch": b, "gflop": flops / 1e9, "mbytes": nbytes / 1e6, "ms_flop": t_flop,
                   "ms_bytes": t_mem, "floor_ms": floor, "bound": "compute" if t_flop > t_mem else "memory",
                   "floor_images_per_s": b / floor * 1e3}
            if (p, b) in measured:
                row["measured_ms"] = measured[(p, b)]
                row["x_floor"] = measured[(p, b)] / floor
            rows.append(row)
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return
    print(f"Ceilings: {peak:g} TFLOP/s, {bw:g} GB/s ({source})\n")
    head = "| preset | batch | GFLOP/iter | MB/iter | ms (flops) | ms (bytes) | floor ms | bound | floor img/s |"
    if measured:
        head += " measured ms | x floor |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in rows:
        line = (f"| {r['preset']} | {r['batch']} | {r['gflop']:.3f} | {r['mbytes']:.1f} | {r['ms_flop']:.4f} | "
                f"{r['ms_bytes']:.4f} | {r['floor_ms']:.4f} | {r['bound']} | {r['floor_images_per_s']:.0f} |")
        if measured:
            line += (f" {r['measured_ms']:.3f} | {r['x_floor']:.1f} |" if "measured_ms" in r else " | |")
        print(line)


if __name__ == "__main__":
    sys.exit(main())
