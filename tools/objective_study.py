#!/usr/bin/env python3
"""Trains every objective on the 2-d mode-collapse benchmarks (ring8, grid25), several seeds each,
evaluates each run with `gancu eval --json`, and writes the table of docs/objectives.md.

    /usr/bin/python3 tools/objective_study.py --out runs/objectives --seeds 1 2 3 \\
        --table docs/objectives/mixtures.md [--data ring8 grid25] [--loss wgan-gp ...] [--jobs 2]

With --presets, it trains each named preset as it is instead (the image presets of the
objectives), evaluates it, and copies its last sample grid beside the table:

    /usr/bin/python3 tools/objective_study.py --presets wgan-gp wgan lsgan hinge dragan r1 began \\
        --out runs/objectives --table docs/objectives/images.md --threads 2

Each run is `gancu train --preset DATA --seed S --set train.loss=LOSS <the objective's settings>`
(the settings of each objective below: those of its paper where they transfer to a small MLP, the
preset's otherwise), into OUT/DATA/LOSS/seedS; a run whose evaluation already exists is not
trained again, so the study can be interrupted and resumed. The evaluation files are copied to
docs/objectives/ beside the table, which has the mean and the spread (min-max) over the seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# The settings of each objective on the point presets (their MLP networks and batch 256). The
# critic-step count, optimizers and penalty weights follow the papers (WGAN: RMSprop 5e-5, 5
# critic steps, clipping 0.01; WGAN-GP: Adam 1e-4 betas (0, 0.9), 5 critic steps, lambda 10;
# DRAGAN: Adam 1e-4 betas (0.5, 0.9)); BEGAN's discriminator is an auto-encoder of the points.
OBJECTIVES: dict[str, list[str]] = {
    "bce": [],
    "bce-minimax": [],
    "lsgan": [],
    "hinge": [],
    "wgan": ["train.d_steps=5", "train.clip=0.01", "optim.d.name=rmsprop", "optim.d.lr=5e-5",
             "optim.g.name=rmsprop", "optim.g.lr=5e-5"],
    "wgan-gp": ["train.d_steps=5", "train.gp_weight=10", "optim.d.lr=1e-4", "optim.d.beta1=0", "optim.d.beta2=0.9",
                "optim.g.lr=1e-4", "optim.g.beta1=0", "optim.g.beta2=0.9"],
    "dragan": ["train.gp_weight=10", "optim.d.lr=1e-4", "optim.d.beta2=0.9", "optim.g.lr=1e-4", "optim.g.beta2=0.9"],
    "r1": ["train.r1_gamma=1"],
    "began": ['model.discriminator=["linear out=256", "lrelu slope=0.2", "linear out=256", "lrelu slope=0.2", '
              '"linear out=2"]', "optim.d.lr=1e-4", "optim.g.lr=1e-4"],
}


def train_and_evaluate(gancu: Path, run: Path, cmd: list[str], threads: int, record: Path | None = None) -> dict:
    """Trains with `cmd` into `run` (its log beside it) and evaluates the run; the evaluation is
    kept in run/eval.json and, when `record` is given, copied there at once (the committed copy
    beside the docs' table: run folders do not outlive a machine, so a study resumes from the
    records). A run that already has either is not trained again; one that was stopped with a
    checkpoint (SIGTERM) is resumed from it."""
    if record is not None and record.is_file():
        return json.loads(record.read_text())
    evaluation = run / "eval.json"
    if evaluation.is_file():
        result = json.loads(evaluation.read_text())
        if record is not None:
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text(json.dumps(result) + "\n")
        return result
    # A run stopped part-way (SIGTERM writes a checkpoint, exit 143) continues from its newest
    # checkpoint with the same command; anything else in the folder is a run that never began.
    resume = run.is_dir() and any((run / "checkpoints").glob("step_*.safetensors"))
    if run.exists() and not resume:
        shutil.rmtree(run)
    run.parent.mkdir(parents=True, exist_ok=True)
    log = run.parent / f"{run.name}.log"
    # A resumed run reads its own config.toml (gancu refuses --preset with --resume).
    run_cmd = ([cmd[0], "train", "--resume", "--out", str(run), "--backend", "cpu", "--threads", str(threads)]
               if resume else cmd)
    with open(log, "a" if resume else "w") as f:
        f.write(" ".join(run_cmd) + "\n")
        f.flush()
        rc = subprocess.run(run_cmd, stdout=f, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        return {"failed": f"exit {rc}, see {log}"}
    r = subprocess.run([str(gancu), "eval", "--run", str(run), "--json", "--backend", "cpu", "--threads",
                        str(threads)], capture_output=True, text=True)
    if r.returncode != 0:
        return {"failed": f"eval exit {r.returncode}: {r.stderr.strip()[-200:]}"}
    result = json.loads(r.stdout.strip().splitlines()[-1])
    result["command"] = " ".join(cmd)
    grids = sorted((run / "samples").glob("step_*.png"))
    result["grid"] = str(grids[-1]) if grids else ""
    evaluation.write_text(json.dumps(result) + "\n")
    if record is not None:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(result) + "\n")
    return result


def run_one(gancu: Path, out: Path, data: str, loss: str, seed: int, threads: int, records: Path | None) -> dict:
    run = out / data / loss / f"seed{seed}"
    cmd = [str(gancu), "train", "--preset", data, "--seed", str(seed), "--backend", "cpu", "--threads", str(threads),
           "--out", str(run), "--set", f"train.loss={loss}"]
    for s in OBJECTIVES[loss]:
        cmd += ["--set", s]
    record = records / f"{data}-{loss}-seed{seed}.eval.json" if records else None
    return train_and_evaluate(gancu, run, cmd, threads, record)


def recorded(records: Path, data: str, loss: str, seed: int) -> dict:
    """The committed evaluation of one run, or a marker that it has not been made yet."""
    record = records / f"{data}-{loss}-seed{seed}.eval.json"
    return json.loads(record.read_text()) if record.is_file() else {"pending": True}


def run_preset(gancu: Path, out: Path, preset: str, threads: int, records: Path | None,
               steps: int | None = None) -> dict:
    run = out / "presets" / preset
    cmd = [str(gancu), "train", "--preset", preset, "--backend", "cpu", "--threads", str(threads), "--out", str(run)]
    if steps:
        cmd += ["--steps", str(steps)]
    return train_and_evaluate(gancu, run, cmd, threads, records / f"{preset}.eval.json" if records else None)


def preset_config(preset: str) -> dict:
    """A preset's TOML (configs/presets/NAME.toml) as a dict."""
    import tomllib

    with open(REPO / "configs" / "presets" / f"{preset}.toml", "rb") as f:
        return tomllib.load(f)


def preset_data(preset: str) -> str:
    """The data set a preset trains on (its data.name)."""
    return preset_config(preset).get("data", {}).get("name", "?")


def preset_table(args, gancu: Path, out: Path) -> int:
    table_dir = Path(args.table).parent if args.table else None
    if args.report and table_dir is None:
        print("objective_study: --report needs --table (the records live beside it)", file=sys.stderr)
        return 2
    results = []
    for p in args.presets:
        if args.report:
            record = table_dir / f"{p}.eval.json"
            results.append((p, json.loads(record.read_text()) if record.is_file() else {"pending": True}))
            continue
        results.append((p, run_preset(gancu, out, p, args.threads, table_dir, args.steps)))
        # The grid is copied as soon as its run is evaluated, so an interrupted study keeps it.
        r = results[-1][1]
        if table_dir and r.get("grid") and Path(r["grid"]).is_file():
            shutil.copyfile(r["grid"], table_dir / f"{p}-{Path(r['grid']).name}")
    lines = ["| preset | data | steps | modes | KL | FID (clf) | precision | recall | grid |",
             "|---|---|---|---|---|---|---|---|---|"]
    for p, r in results:
        data = preset_data(p)
        if "failed" in r or "pending" in r:
            why = f"failed: {r['failed']}" if "failed" in r else "not run yet"
            lines.append(f"| {p} | {data} | - | - | - | - | - | - | {why} |")
            continue
        grid = Path(r["grid"]) if r.get("grid") else None
        name = f"{p}-{grid.name}" if grid else ""
        steps = grid.stem.split("_")[-1].lstrip("0") if grid else "-"
        lines.append(f"| {p} | {data} | {steps} | {r['eval/modes']}/{r['eval/modes_total']} | "
                     f"{r['eval/kl_uniform']:.3f} | {r['eval/fid_classifier']:.1f} | "
                     f"{r['eval/precision']:.3f} | {r['eval/recall']:.3f} | ![{p}]({name}) |")
    publish_table(lines, args.table)
    return 0


def publish_table(lines: list[str], path: str) -> None:
    """Prints a study's Markdown table and, when `path` is given, writes it there."""
    table = "\n".join(lines) + "\n"
    print(table)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(table)


def spread(values: list[float], fmt: str, range_fmt: str | None = None) -> str:
    """'6.3 (4.0-9.0)': the mean over the seeds and, with more than one seed, the smallest and
    largest (in `range_fmt` where given)."""
    if not values:
        return "-"
    mean = sum(values) / len(values)
    if len(values) == 1:
        return fmt.format(mean)
    r = range_fmt or fmt
    return f"{fmt.format(mean)} ({r.format(min(values))}-{r.format(max(values))})"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gancu", default=str(REPO / "build" / "gancu"))
    ap.add_argument("--out", default="runs/objectives")
    ap.add_argument("--data", nargs="+", default=["ring8", "grid25"])
    ap.add_argument("--loss", nargs="+", default=list(OBJECTIVES))
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument("--jobs", type=int, default=1, help="runs at once (each on --threads threads)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--table", default=None, help="write the markdown table here (and the evaluations beside it)")
    ap.add_argument("--presets", nargs="+", default=None, help="train these presets as they are (image objectives)")
    ap.add_argument("--steps", type=int, default=None,
                    help="with --presets: train this many steps instead of each preset's own (the table says how many)")
    ap.add_argument("--report", action="store_true",
                    help="train nothing: write the table from the recorded evaluations, runs not yet made marked so")
    args = ap.parse_args(argv)
    gancu, out = Path(args.gancu), Path(args.out)
    if args.presets:
        return preset_table(args, gancu, out)
    for loss in args.loss:
        if loss not in OBJECTIVES:
            print(f"objective_study: unknown objective {loss} (known: {', '.join(OBJECTIVES)})", file=sys.stderr)
            return 2
    jobs = [(d, l, s) for d in args.data for l in args.loss for s in args.seeds]
    records = Path(args.table).parent if args.table else None
    if args.report:
        if records is None:
            print("objective_study: --report needs --table (the records live beside it)", file=sys.stderr)
            return 2
        results = [recorded(records, *j) for j in jobs]
    else:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            results = list(pool.map(lambda j: run_one(gancu, out, *j, args.threads, records), jobs))
    by = {}
    for (d, l, s), r in zip(jobs, results):
        by.setdefault((d, l), []).append((s, r))

    lines = ["| data | objective | seeds run | modes, mean (min-max) | per seed | high quality | not run or failed |",
             "|---|---|---|---|---|---|---|"]
    for d in args.data:
        for l in args.loss:
            runs = by[(d, l)]
            ok = [(s, r) for s, r in runs if "failed" not in r and "pending" not in r]
            modes = [float(r["eval/modes"]) for _, r in ok]
            total = ok[0][1]["eval/modes_total"] if ok else "-"
            hq = [100.0 * r["eval/high_quality"] for _, r in ok]
            per_seed = ", ".join(f"{r['eval/modes']}" for _, r in ok) or "-"
            missing = [f"seed {s}: {r['failed']}" for s, r in runs if "failed" in r]
            missing += [f"seed {s}: not run yet" for s, r in runs if "pending" in r]
            lines.append(f"| {d} | {l} | {len(ok)}/{len(runs)} | {spread(modes, '{:.1f}')} / {total} | {per_seed} | "
                         f"{spread(hq, '{:.0f}%')} | {'; '.join(missing) or '-'} |")
    publish_table(lines, args.table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
