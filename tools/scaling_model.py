#!/usr/bin/env python3
"""On-paper scaling of gancu's data-parallel training on GPU nodes (docs/data_parallel.md).

For each preset it reads, from `gancu bench --json` (run here with --steps 1 unless --bench gives
records), the parameter counts and D steps, hence the bytes one iteration all-reduces:
    S_D = 4 * params_d   (after each of the d_steps D steps)     S_G = 4 * params_g   (once)
An all-reduce of S bytes over n ranks takes, with NCCL's bus bandwidth B (nccl-tests' busbw,
defined so that t = S * 2 (n - 1) / n / B) and a fixed cost a per call:
    t(S) = a + 2 (n - 1) / n * S / B
and an iteration spends T_comm = d_steps * t(S_D) + t(S_G) in them. gancu all-reduces after the
backward pass (no overlap yet), so a rank whose compute takes T_comp per iteration runs at
efficiency E = T_comp / (T_comp + T_comm). The table gives T_comm and the T_comp that E = 90% needs
(9 T_comm; E = 50% needs T_comm); with GPU measurements (--bench records with backend cuda) it
also gives E itself at the measured per-GPU batch.

Within one node the ranks share NVLink (--intra-busbw); across nodes the slowest link sets the
ring's pace (--inter-busbw). Defaults: published large-message busbw of 8x H100 SXM (NVLink 4,
NVSwitch) and of H100 nodes with 8x 400 Gb/s InfiniBand NDR; the per-call costs are assumptions
(small messages reach a fraction of the large-message busbw: a models that).

  /usr/bin/python3 tools/scaling_model.py --preset ring8 mlp dcgan dcgan32 wgan-gp --nodes 1 2 16
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def bench_record(gancu: str, preset: str) -> dict:
    out = subprocess.run([gancu, "bench", "--preset", preset, "--steps", "1", "--warmup", "0", "--json",
                          "--backend", "cpu"], capture_output=True, text=True, check=True).stdout
    return next(json.loads(line) for line in out.splitlines() if line.startswith("{"))


def allreduce_seconds(nbytes: float, ranks: int, busbw: float, latency: float) -> float:
    if ranks == 1:
        return 0.0
    return latency + 2 * (ranks - 1) / ranks * nbytes / busbw


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gancu", default=str(REPO_ROOT / "build" / "gancu"))
    ap.add_argument("--preset", nargs="+", default=["ring8", "mlp", "dcgan", "dcgan32"])
    ap.add_argument("--bench", help="JSON lines of gancu bench (GPU records give measured efficiency)")
    ap.add_argument("--gpus-per-node", type=int, default=8)
    ap.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    ap.add_argument("--intra-busbw", type=float, default=450e9, help="bytes/s within a node")
    ap.add_argument("--inter-busbw", type=float, default=400e9, help="bytes/s across nodes")
    ap.add_argument("--intra-latency", type=float, default=20e-6, help="seconds per all-reduce within a node")
    ap.add_argument("--inter-latency", type=float, default=50e-6, help="seconds per all-reduce across nodes")
    ap.add_argument("--out")
    args = ap.parse_args(argv)

    records = {}
    if args.bench:
        for line in Path(args.bench).read_text().splitlines():
            if line.startswith("{"):
                r = json.loads(line)
                records.setdefault(r["preset"], []).append(r)
    lines = [
        "| preset | params G + D | MB per iteration | nodes x GPUs | T_comm (ms) | T_comp for 90% (ms) | measured E |",
        "|---|---|---|---|---|---|---|",
    ]
    for preset in args.preset:
        rec = (records.get(preset) or [None])[0] or bench_record(args.gancu, preset)
        pg, pd, d_steps = rec["params_g"], rec["params_d"], rec["d_steps"]
        mb = 4 * (d_steps * pd + pg) / 1e6
        gpu = [r for r in records.get(preset, []) if r.get("backend") == "cuda"]
        for nodes in args.nodes:
            n = nodes * args.gpus_per_node
            busbw = args.intra_busbw if nodes == 1 else args.inter_busbw
            latency = args.intra_latency if nodes == 1 else args.inter_latency
            t = d_steps * allreduce_seconds(4 * pd, n, busbw, latency) + allreduce_seconds(4 * pg, n, busbw, latency)
            measured = "not measured (no GPU run yet)"
            if gpu:
                t_comp = gpu[0]["ms_per_iter"] / 1e3
                measured = f"{t_comp / (t_comp + t):.2f} at batch {gpu[0]['batch']} per GPU"
            lines.append(f"| {preset} | {(pg + pd) / 1e6:.2f} M | {mb:.2f} | {nodes} x {args.gpus_per_node} | "
                         f"{1e3 * t:.3f} | {9e3 * t:.2f} | {measured} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
