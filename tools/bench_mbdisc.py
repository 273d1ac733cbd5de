#!/usr/bin/env python3
"""Minibatch discrimination on the CPU: gancu's fused layer against the usual PyTorch code.

Both sides run the whole layer, forward and backward, at F = 8192 features, A = 100 kernels,
C = 5 dims and each batch B:
    M = f T (a GEMM), o[i, a] = sum_j exp(-sum_c |M[i,a,c] - M[j,a,c]|), y = [f, o],
    then the backward from a random dy to f and T.
- gancu: the `mbdisc_layer/B` case of build/gancu_bench (bench/minibatch_bench.cpp), a Network
  with the one layer; its pairwise part is the fused op (never B x B x A x C).
- PyTorch: the implementation found in most GAN code, which broadcasts M[None] - M[:, None] into
  a [B, B, A, C] tensor and lets autograd differentiate it (written here from the formula).

Each measurement runs in a fresh process with the same thread count (OMP_NUM_THREADS,
OPENBLAS_NUM_THREADS, torch.set_num_threads); its peak memory is the child's peak resident set
(ru_maxrss from wait4). "Above idle" subtracts the peak of the same runner doing nothing (the
benchmark binary with no case selected; Python with torch imported), so it counts the inputs,
the parameters, their gradients and the working memory of the layer.

Example (what docs/benchmarks/cpu.md records):
  /usr/bin/python3 tools/bench_mbdisc.py --batch 64 256 1024 --threads 2 --reps 3
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
REPO_ROOT = TOOLS.parent
F, A, C = 8192, 100, 5


def run_measured(cmd: list[str], threads: int) -> tuple[str, float]:
    """Runs cmd to completion and returns (stdout, peak RSS of that process in MiB)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    out_path = Path(f"/tmp/bench_mbdisc.{os.getpid()}.out")
    err_path = Path(f"/tmp/bench_mbdisc.{os.getpid()}.err")
    with open(out_path, "w") as out_f, open(err_path, "w") as err_f:
        # posix_spawn + wait4: the rusage of exactly this child (its own peak resident set).
        pid = os.posix_spawn(cmd[0], cmd, env, file_actions=[
            (os.POSIX_SPAWN_DUP2, out_f.fileno(), 1), (os.POSIX_SPAWN_DUP2, err_f.fileno(), 2)])
        _, status, usage = os.wait4(pid, 0)
    out, err = out_path.read_text(), err_path.read_text()
    out_path.unlink()
    err_path.unlink()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"{' '.join(cmd)} failed ({code}):\n{err[-3000:]}")
    return out, usage.ru_maxrss / 1024.0


# ---- the PyTorch side (runs in a child: python3 tools/bench_mbdisc.py --torch-child B) ----------

def torch_child(batch: int, reps: int, threads: int, idle: bool) -> None:
    import torch

    torch.set_num_threads(threads)
    if idle:
        print(json.dumps({"idle": True}))
        return
    gen = torch.Generator().manual_seed(1)
    f = torch.randn(batch, F, generator=gen).requires_grad_()
    T = (0.02 * torch.randn(F, A * C, generator=gen)).requires_grad_()
    dy = torch.randn(batch, F + A, generator=gen)

    def layer():
        m = (f @ T).view(batch, A, C)
        dist = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(3)  # [B, B, A] from a [B, B, A, C] tensor
        o = torch.exp(-dist).sum(0)
        return torch.cat([f, o], 1)

    times = []
    for r in range(reps + 1):  # the first is a warm-up
        f.grad = None
        T.grad = None
        t0 = time.perf_counter()
        layer().backward(dy)
        if r > 0:
            times.append(time.perf_counter() - t0)
    print(json.dumps({"times_s": times}))


# ---- the driver ---------------------------------------------------------------------------------

def gancu_case(bench: Path, batch: int, reps: int, threads: int) -> dict:
    cmd = [str(bench), f"--benchmark_filter=^mbdisc_layer/{batch}/", "--benchmark_format=json",
           f"--benchmark_repetitions={reps}", "--benchmark_min_time=0.01"]
    cmd = [c for c in cmd if c]
    os.environ["GANCU_MBDISC_BATCHES"] = str(batch)
    out, peak = run_measured(cmd, threads)
    runs = [b for b in json.loads(out)["benchmarks"] if b.get("run_type") == "iteration"]
    if not runs:
        sys.exit(f"gancu_bench ran no mbdisc_layer/{batch} case:\n{out[-2000:]}")
    if any("error_occurred" in b and b["error_occurred"] for b in runs):
        sys.exit(f"gancu_bench's result check failed: {runs[0].get('error_message')}")
    ms = [b["real_time"] for b in runs]  # kMillisecond unit
    return {"ms": statistics.median(ms), "ms_all": ms, "peak_mib": peak, "err": runs[0]["err"],
            "arena_mib": runs[0].get("arena_MB")}


def torch_case(batch: int, reps: int, threads: int) -> dict:
    out, peak = run_measured([sys.executable, str(Path(__file__).resolve()), "--torch-child", str(batch),
                              "--reps", str(reps), "--threads", str(threads)], threads)
    times = json.loads(out.strip().splitlines()[-1])["times_s"]
    return {"ms": 1e3 * statistics.median(times), "ms_all": [1e3 * t for t in times], "peak_mib": peak}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, nargs="+", default=[64, 256, 1024])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3, help="timed repetitions per side and batch (median shown)")
    ap.add_argument("--bench", type=Path, default=REPO_ROOT / "build" / "gancu_bench")
    ap.add_argument("--json", type=Path, help="also write the raw measurements here")
    ap.add_argument("--torch-child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--torch-idle", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_child is not None:
        torch_child(args.torch_child, args.reps, args.threads, args.torch_idle)
        return
    if not args.bench.exists():
        sys.exit(f"{args.bench} not found: build with benchmarks (tools/build.sh) or pass --bench")

    os.environ["GANCU_MBDISC_BATCHES"] = "0"
    _, gancu_idle = run_measured([str(args.bench), "--benchmark_filter=^none$"], args.threads)
    _, torch_idle = run_measured([sys.executable, str(Path(__file__).resolve()), "--torch-child", "0",
                                  "--torch-idle", "--threads", str(args.threads)], args.threads)
    rows = []
    for b in args.batch:
        g = gancu_case(args.bench, b, args.reps, args.threads)
        t = torch_case(b, args.reps, args.threads)
        rows.append({"batch": b, "gancu": g, "torch": t})
        print(f"B={b}: gancu {g['ms']:.1f} ms, peak {g['peak_mib']:.0f} MiB; "
              f"torch {t['ms']:.1f} ms, peak {t['peak_mib']:.0f} MiB", file=sys.stderr)

    print(f"F = {F}, A = {A}, C = {C}; {args.threads} threads; median of {args.reps} repetitions; "
          f"idle peak: gancu_bench {gancu_idle:.0f} MiB, python+torch {torch_idle:.0f} MiB\n")
    print("| B | gancu ms | PyTorch ms | speed-up | gancu peak MiB (above idle) | "
          "PyTorch peak MiB (above idle) | B^2 A C floats (MiB) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        g, t, b = r["gancu"], r["torch"], r["batch"]
        pairwise = b * b * A * C * 4 / 2**20
        print(f"| {b} | {g['ms']:.1f} | {t['ms']:.1f} | {t['ms'] / g['ms']:.1f}x | "
              f"{g['peak_mib']:.0f} ({g['peak_mib'] - gancu_idle:.0f}) | "
              f"{t['peak_mib']:.0f} ({t['peak_mib'] - torch_idle:.0f}) | {pairwise:.0f} |")
    if args.json:
        args.json.write_text(json.dumps({"F": F, "A": A, "C": C, "threads": args.threads, "reps": args.reps,
                                         "idle_mib": {"gancu": gancu_idle, "torch": torch_idle},
                                         "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
