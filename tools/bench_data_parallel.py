#!/usr/bin/env python3
"""Data-parallel training on the CPU: N ranks of 1 thread (mpirun) against 1 process of N threads.

For each preset it runs, at the same global batch,
    build/gancu bench --preset P --steps S --json --set run.threads=N
    mpirun -np N build/gancu bench --preset P --steps S --json --set run.threads=1
and prints a Markdown table: the images/s of both, their ratio (> 1: the ranks are faster), the
milliseconds per iteration rank 0 spent in the gradient all-reduces (waiting for the other rank
included) and their share of the iteration, and the bytes all-reduced per iteration. Every raw
JSON line goes to --raw.

Example (what docs/benchmarks/cpu.md#data-parallel is made from):
  /usr/bin/python3 tools/bench_data_parallel.py --preset ring8 mlp dcgan --ranks 2 \\
      --raw docs/benchmarks/data_parallel.jsonl --out docs/benchmarks/data_parallel_table.md
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
sys.path.insert(0, str(TOOLS))
from bench_compare import parse_json_lines, run  # noqa: E402

REPO_ROOT = TOOLS.parent

# Open MPI in containers: shared memory without cross-memory attach; the ranks unbound, so that
# each rank's one thread is placed by the OS as the one process's threads are.
MPI_ENV = {"OMPI_MCA_btl_vader_single_copy_mechanism": "none", "OMPI_MCA_hwloc_base_binding_policy": "none"}


def bench(cmd: list[str], env: dict, timeout: float, what: str) -> dict:
    records = [r for r in parse_json_lines(run(cmd, env, timeout, what)) if r.get("impl") == "gancu"]
    if len(records) != 1:
        raise SystemExit(f"{what}: expected one JSON line from rank 0, got {len(records)}")
    return records[0]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gancu", default=str(REPO_ROOT / "build" / "gancu"))
    ap.add_argument("--preset", nargs="+", default=["ring8", "mlp", "dcgan"])
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--set", action="append", default=[], help="KEY=VALUE for every run")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--raw", help="append every JSON record here")
    ap.add_argument("--out", help="write the Markdown table here")
    args = ap.parse_args(argv)

    env = dict(os.environ, **MPI_ENV)
    sets = [x for kv in args.set for x in ("--set", kv)]
    rows, raw = [], []
    for preset in args.preset:
        common = ["bench", "--preset", preset, "--steps", str(args.steps), "--json", *sets]
        one = bench([args.gancu, *common, "--set", f"run.threads={args.ranks}"], env, args.timeout,
                    f"{preset}: 1 process")
        ranks = bench(["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", str(args.ranks), args.gancu,
                       *common, "--set", "run.threads=1"], env, args.timeout, f"{preset}: {args.ranks} ranks")
        raw += [one, ranks]
        share = ranks["allreduce_ms_per_iter"] / ranks["ms_per_iter"]
        rows.append(
            f"| {preset} | {one['batch']} | {one['images_per_s']:.1f} | {ranks['images_per_s']:.1f} | "
            f"{ranks['images_per_s'] / one['images_per_s']:.2f} | {ranks['allreduce_ms_per_iter']:.2f} "
            f"({100 * share:.1f}%) | {ranks['allreduce_bytes_per_iter'] / 1e6:.2f} |")

    commit = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    lines = [
        f"Measured {datetime.date.today().isoformat()} on {cpu_model()} ({os.cpu_count()} cores), commit "
        f"{commit}: {args.ranks} ranks of 1 thread (`mpirun -np {args.ranks}`) against 1 process of "
        f"{args.ranks} threads, same global batch, {args.steps} timed iterations each.",
        "",
        f"| preset | global batch | 1 process, {args.ranks} threads (img/s) | {args.ranks} ranks x 1 thread "
        "(img/s) | ratio | all-reduce ms/iter (share) | MB all-reduced/iter |",
        "|---|---|---|---|---|---|---|",
        *rows,
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    if args.raw:
        with open(args.raw, "a") as f:
            for r in raw:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
