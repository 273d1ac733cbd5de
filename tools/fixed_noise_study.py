#!/usr/bin/env python3
"""The fixed-noise comparison of the Minibatch-GAN experiment: a baseline preset and the same GAN
with a remedy (by default `mlp` and `mlp-distance`, the distance head), trained with the same seeds
and steps, then fed the same noise sets (`gancu compare`), the digits of each set counted by the
shipped classifier, and each run scored by `gancu eval`.

    /usr/bin/python3 tools/fixed_noise_study.py --gancu build/gancu --out runs/fixed_noise \\
        --steps 3000 --seeds 1 2 3 --table docs/mode_collapse/distance_head.md

Arms other than two presets: `--arm "LABEL PRESET [key=value ...]"`, once per arm, e.g. D
pre-training against the plain preset:

    ... --arm "mlp mlp" --arm "mlp-pretrain mlp train.d_pretrain_steps=500" \\
        --table docs/mode_collapse/d_pretrain.md

Each run is `gancu train --preset P --seed S --steps N --backend cpu [--set ...]` into
OUT/LABEL/seedS; a run whose evaluation is already recorded (beside the table,
LABEL-seedS.eval.json) is not trained again, so the
study can be interrupted and resumed. The comparison of seed S is OUT/compare/seedS (set_NN.png,
one row per arm, and table.json); its first set's picture is copied beside the table. The table
has, per arm, the mean and the spread (min-max) over the seeds of: the distinct digits per noise
set (the experiment's number: a collapsed generator draws the same few digits whatever the noise),
the modes covered of 10, the KL divergence of the class histogram from uniform, the Frechet
distance on classifier features, and recall.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from objective_study import publish_table, spread, train_and_evaluate  # noqa: E402


def compare(gancu: Path, runs: list[Path], out: Path, sets: int, per_set: int, threads: int) -> list[list[int]]:
    """Distinct classes per noise set, one list per run (in the order given)."""
    table = out / "table.json"
    if not table.is_file():
        r = subprocess.run([str(gancu), "compare", *map(str, runs), "--sets", str(sets), "--per-set", str(per_set),
                            "--out", str(out), "--backend", "cpu", "--threads", str(threads)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"gancu compare failed (exit {r.returncode}): {r.stderr.strip()[-300:]}")
    data = json.loads(table.read_text())
    distinct = [[] for _ in runs]
    for s in data:  # one entry per noise set
        for k, run in enumerate(s["runs"]):
            distinct[k].append(int(run["distinct_classes"]))
    return distinct


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gancu", default="build/gancu")
    ap.add_argument("--out", default="runs/fixed_noise")
    ap.add_argument("--presets", nargs=2, default=["mlp", "mlp-distance"], metavar=("BASELINE", "REMEDY"))
    ap.add_argument("--arm", action="append", default=[],
                    help='"LABEL PRESET [key=value ...]": an arm of the comparison (replaces --presets)')
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--sets", type=int, default=8)
    ap.add_argument("--per-set", type=int, default=9)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], dest="sets_extra",
                    help="a --set for every run (both presets), e.g. train.batch=64")
    ap.add_argument("--table", default="")
    args = ap.parse_args(argv)
    gancu, out = Path(args.gancu), Path(args.out)
    records = Path(args.table).parent if args.table else None

    arms = [a.split() for a in args.arm] if args.arm else [[p, p] for p in args.presets]
    if any(len(a) < 2 for a in arms) or len({a[0] for a in arms}) != len(arms) or len(arms) < 2:
        ap.error("each --arm is 'LABEL PRESET [key=value ...]', with distinct labels, two or more arms")
    labels = [a[0] for a in arms]
    results = {label: [] for label in labels}
    distinct = {label: [] for label in labels}
    for seed in args.seeds:
        runs = []
        for label, preset, *sets in arms:
            run = out / label / f"seed{seed}"
            cmd = [str(gancu), "train", "--preset", preset, "--seed", str(seed), "--steps", str(args.steps),
                   "--backend", "cpu", "--threads", str(args.threads), "--out", str(run)]
            for s in args.sets_extra + sets:
                cmd += ["--set", s]
            record = records / f"{label}-seed{seed}.eval.json" if records else None
            r = train_and_evaluate(gancu, run, cmd, args.threads, record)
            if "failed" in r:
                print(f"{label} seed {seed}: {r['failed']}", file=sys.stderr)
                return 1
            results[label].append(r)
            runs.append(run)
        cmp_out = out / "compare" / "-".join(labels) / f"seed{seed}"
        for label, d in zip(labels, compare(gancu, runs, cmp_out, args.sets, args.per_set, args.threads)):
            distinct[label] += d
        if records:
            stem = records / f"compare-{'-'.join(labels)}-seed{seed}"
            shutil.copyfile(cmp_out / "set_00.png", f"{stem}-set_00.png")
            Path(f"{stem}.table.json").write_text((cmp_out / "table.json").read_text())

    lines = [f"Rows of each picture: {', '.join(labels)} (top to bottom); {args.steps} steps, seeds "
             f"{' '.join(map(str, args.seeds))}, {args.sets} noise sets of {args.per_set} per seed. Arms: "
             + "; ".join(f"{a[0]} = `--preset {a[1]}" + "".join(f" --set {x}" for x in args.sets_extra + a[2:]) + "`"
                         for a in arms) + ".", "",
             "| arm | distinct digits per set | modes of 10 | KL from uniform | FD (classifier) | recall |",
             "|---|---|---|---|---|---|"]
    for p in labels:
        rs = results[p]
        per_seed_distinct = [sum(distinct[p][i:i + args.sets]) / args.sets
                             for i in range(0, len(distinct[p]), args.sets)]
        lines.append(f"| {p} | {spread(per_seed_distinct, '{:.2f}')} | "
                     f"{spread([r['eval/modes'] for r in rs], '{:.1f}')} | "
                     f"{spread([r['eval/kl_uniform'] for r in rs], '{:.3f}')} | "
                     f"{spread([r['eval/fid_classifier'] for r in rs], '{:.1f}')} | "
                     f"{spread([r['eval/recall'] for r in rs], '{:.3f}')} |")
    publish_table(lines, args.table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
