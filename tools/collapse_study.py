#!/usr/bin/env python3
"""The mode-collapse study of docs/mode_collapse.md: every remedy on the same networks and the
same step budget, on ring8, grid25, Stacked MNIST and MNIST, several seeds each, each run evaluated
by `gancu eval --json` (modes, KL of the mode histogram against uniform, FID on classifier
features, recall), with the mean and the spread over the seeds.

    /usr/bin/python3 tools/collapse_study.py --out runs/collapse --seeds 1 2 3 \\
        --table docs/mode_collapse/study.md [--data ring8 grid25] [--remedy baseline mbdisc ...]
    /usr/bin/python3 tools/collapse_study.py --report --table docs/mode_collapse/study.md   # table only

A run is `gancu train --preset BASE --seed S <the remedy's settings>` into OUT/DATA/REMEDY/seedS,
where BASE is the data set's preset (ring8, grid25, stacked-mnist; MNIST: dcgan with --data mnist)
and the remedy changes only what it names (a layer in D, a tap, a second head of G, a loss key);
the budget is the base preset's. The evaluations are kept beside the table
(DATA-REMEDY-seedS.eval.json, each with its exact command), so an interrupted study resumes from
them and `--report` rebuilds the table; the last sample grid of seed 1 is copied there too.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import objective_study as study

REPO = Path(__file__).resolve().parent.parent

# The data sets: the preset that is the baseline on each, and the data flag it needs.
DATA: dict[str, tuple[str, list[str]]] = {
    "ring8": ("ring8", []),
    "grid25": ("grid25", []),
    "stacked-mnist": ("stacked-mnist", []),
    "mnist": ("dcgan", ["--data", "mnist"]),
}
MIXTURES = {"ring8", "grid25"}

def base_networks(data: str) -> tuple[list[str], list[str]]:
    """G's and D's layer strings of the data set's preset (configs/presets): what every remedy starts from."""
    model = study.preset_config(DATA[data][0])["model"]
    return list(model["generator"]), list(model["discriminator"])


def toml_list(strings: list[str]) -> str:
    return "[" + ", ".join(json.dumps(s) for s in strings) + "]"


def reading(layer: str, name: str) -> str:
    """`layer` reading the value `name` instead of the previous output."""
    kind, _, rest = layer.partition(" ")
    return f"{kind} in={name} {rest}".rstrip()


def remedy_settings(remedy: str, data: str) -> list[str]:
    """The --set overrides of one remedy on one data set; everything it does not name stays the
    preset's. The mixtures' networks are MLPs (D: linear, lrelu, linear, lrelu, linear); the image
    sets' are DCGAN's (D: conv, lrelu, conv, bn, lrelu, flatten, linear; G ends conv, tanh)."""
    mixture = data in MIXTURES
    g, d = base_networks(data)
    flatten = None if mixture else d.index("flatten")
    if remedy == "baseline":
        return []
    if remedy == "mbdisc":  # Salimans et al.: the batch's closeness, before D's last linear
        d = d[:2] + ["mbdisc kernels=16 dims=4"] + d[2:] if mixture else d[:-1] + ["mbdisc kernels=100 dims=5"] + d[-1:]
        return [f"model.discriminator={toml_list(d)}"]
    if remedy == "mbstd":  # Karras et al.: the batch's spread as one more feature or channel
        at = 2 if mixture else flatten
        return [f"model.discriminator={toml_list(d[:at] + ['mbstd'] + d[at:])}"]
    if remedy == "feature-matching":  # G matches D's mean features at its last hidden layer
        at = len(d) - 2 if mixture else flatten - 1
        d[at] += " name=features"
        return [f"model.discriminator={toml_list(d)}", "train.feature_matching=features"]
    if remedy == "distance-head":  # G's second output, one number per sample, scored against its norm
        tail = 1 if mixture else 2  # the output layer (and its tanh) that the trunk feeds
        trunk, out = g[:-tail], g[-tail:]
        trunk[-1] += " name=trunk"
        head = ["linear in=trunk out=1 name=distance"] if mixture else ["flatten in=trunk", "linear out=1 name=distance"]
        g = trunk + head + [reading(out[0], "trunk")] + out[1:]
        return [f"model.generator={toml_list(g)}", "train.distance_head=distance", "train.distance_label=norm",
                "train.distance_weight=1"]
    if remedy == "label-smoothing":  # one-sided: real targets 0.9
        return ["train.label_smoothing=0.1"]
    if remedy == "d-steps":  # several D steps per G step
        return ["train.d_steps=2"]
    if remedy == "wgan-gp":  # the objectives study's settings; a critic without batch norm
        sets = ["train.loss=wgan-gp"] + study.OBJECTIVES["wgan-gp"]
        if "bn" in d:
            sets.append(f"model.discriminator={toml_list(['ln' if s == 'bn' else s for s in d])}")
        return sets
    raise KeyError(remedy)


REMEDIES = ["baseline", "mbdisc", "mbstd", "feature-matching", "distance-head", "label-smoothing", "d-steps",
            "wgan-gp"]


def command(gancu: Path, run: Path, data: str, remedy: str, seed: int, threads: int,
            steps: int | None) -> list[str]:
    preset, flags = DATA[data]
    cmd = [str(gancu), "train", "--preset", preset, *flags, "--seed", str(seed), "--backend", "cpu", "--threads",
           str(threads), "--out", str(run)]
    if steps:
        cmd += ["--steps", str(steps)]
    for s in remedy_settings(remedy, data):
        cmd += ["--set", s]
    return cmd


def kl_from_histogram(counts: list[int]) -> float:
    """KL(mode histogram || uniform over the modes), in nats; what `gancu eval` reports as
    eval/kl_uniform for image data, here from a mixture's per-mode counts."""
    total = sum(counts)
    if total == 0:
        return float("inf")
    k = len(counts)
    return sum((c / total) * math.log((c / total) * k) for c in counts if c > 0)


def row_values(r: dict) -> dict:
    kl = r.get("eval/kl_uniform")
    if kl is None and "per_mode" in r:
        kl = kl_from_histogram(r["per_mode"])
    return {"modes": float(r["eval/modes"]), "kl": kl, "fid": r.get("eval/fid_classifier"),
            "recall": r.get("eval/recall"), "hq": r.get("eval/high_quality")}


def finished(results: dict, data: str, remedy: str, seeds: list[int]) -> list[dict]:
    """The evaluations of the seeds whose run finished (neither failed nor still to make)."""
    runs = [results[(data, remedy, s)] for s in seeds]
    return [r for r in runs if "failed" not in r and "pending" not in r]


def table(data_sets: list[str], remedies: list[str], seeds: list[int], results: dict) -> list[str]:
    lines = ["| data | remedy | seeds | modes | KL (nats) | FID (clf) | recall | high quality | not run or failed |",
             "|---|---|---|---|---|---|---|---|---|"]
    for d in data_sets:
        for rem in remedies:
            runs = [(s, results[(d, rem, s)]) for s in seeds]
            ok = finished(results, d, rem, seeds)
            vals = [row_values(r) for r in ok]
            col = lambda key, fmt, scale=1.0: study.spread([v[key] * scale for v in vals if v[key] is not None], fmt)  # noqa
            total = ok[0]["eval/modes_total"] if ok else "-"
            missing = [f"seed {s}: {r['failed']}" for s, r in runs if "failed" in r]
            missing += [f"seed {s}: not run yet" for s, r in runs if "pending" in r]
            lines.append(f"| {d} | {rem} | {len(ok)}/{len(runs)} | {col('modes', '{:.1f}')} / {total} | "
                         f"{col('kl', '{:.2f}')} | {col('fid', '{:.0f}')} | {col('recall', '{:.2f}')} | "
                         f"{col('hq', '{:.0f}%', 100.0)} | {'; '.join(missing) or '-'} |")
    return lines


def mean_of(values: list[float], fmt: str) -> str:
    return fmt.format(sum(values) / len(values)) if values else "-"


def summary(data: str, remedies: list[str], seeds: list[int], results: dict, records: Path, doc: Path) -> list[str]:
    """The per-data-set table of docs/mode_collapse.md: the baseline first, then the remedies by
    mean modes covered (most first; ties by sample quality), the seeds' mean and range, and seed
    1's last grid (its path relative to `doc`). Runs that failed or were not made are left out of
    the numbers; the seeds column says how many the row holds."""
    mixture = data in MIXTURES
    head = "| remedy | seeds | modes | KL | " + ("high quality |" if mixture else "FID (clf) | recall |")
    lines = [head + f" seed {seeds[0]}'s last grid |", "|" + "---|" * (head.count("|"))]
    rows = []
    for rem in remedies:
        vals = [row_values(r) for r in finished(results, data, rem, seeds)]
        modes = [v["modes"] for v in vals]
        present = lambda key: [v[key] for v in vals if v[key] is not None]  # noqa: E731
        cells = [rem if rem != "d-steps" else "d-steps (2 D steps)", f"{len(vals)} of {len(seeds)}",
                 study.spread(modes, "{:.1f}" if mixture else "{:.0f}", "{:.0f}"),
                 mean_of(present("kl"), "{:.2f}")]
        if mixture:
            cells.append(mean_of([100 * h for h in present("hq")], "{:.0f}%"))
        else:
            cells += [mean_of(present("fid"), "{:.0f}"), mean_of(present("recall"), "{:.3f}")]
        grids = sorted(records.glob(f"{data}-{rem}-seed{seeds[0]}-step_*.png"))
        rel = Path(os.path.relpath(grids[-1], doc.parent)).as_posix() if grids else None
        cells.append(f"![{data} {rem} seed {seeds[0]}]({rel})" if rel else "-")
        # Ties in modes (every seed of every remedy draws all ten digits on MNIST) go to the better
        # samples: the lower FID on images, the larger high-quality share on the mixtures.
        quality = present("fid") if not mixture else [-h for h in present("hq")]
        rank = (rem != "baseline", not modes, -(sum(modes) / len(modes)) if modes else 0.0,
                sum(quality) / len(quality) if quality else math.inf)
        rows.append((rank, "| " + " | ".join(cells) + " |"))
    return lines + [row for _, row in sorted(rows, key=lambda r: r[0])]


def mode_shares(data: str, remedies: list[str], seeds: list[int], results: dict) -> dict[str, list[float]]:
    """Per remedy, the share of the data set's modes that each finished seed covers (0 to 1)."""
    return {rem: [r["eval/modes"] / r["eval/modes_total"] for r in finished(results, data, rem, seeds)]
            for rem in remedies}


def plot_modes(data_sets: list[str], remedies: list[str], seeds: list[int], results: dict, path: Path) -> None:
    """One panel per data set: each remedy's share of modes covered, a dot per seed and a bar at the
    mean, the baseline's mean as a dashed line across; what the tables say, at a glance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(data_sets), figsize=(4.2 * len(data_sets), 4.2), sharey=True, squeeze=False)
    for ax, data in zip(axes[0], data_sets):
        shares = mode_shares(data, remedies, seeds, results)
        total = next((f"{r['eval/modes_total']} modes" for (d, _, _), r in results.items()
                      if d == data and "eval/modes_total" in r), "no runs yet")
        for x, rem in enumerate(remedies):
            v = shares[rem]
            if v:
                ax.bar(x, sum(v) / len(v), color="#9ecae1" if rem != "baseline" else "#fdae6b", width=0.7)
                ax.plot([x] * len(v), v, "o", color="black", markersize=3)
            else:
                ax.text(x, 0.02, "not run yet", rotation=90, ha="center", va="bottom", fontsize=7, color="gray")
        base = shares.get("baseline")
        if base:
            ax.axhline(sum(base) / len(base), color="#e6550d", linestyle="--", linewidth=1)
        ax.set_xticks(range(len(remedies)), remedies, rotation=60, ha="right", fontsize=8)
        ax.set_title(f"{data} ({total})", fontsize=10)
        ax.set_ylim(0, 1.05)
        ax.set_xlim(-0.6, len(remedies) - 0.4)
    axes[0][0].set_ylabel("share of modes covered (dots: seeds)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def summary_markers(data: str) -> tuple[str, str]:
    return (f"<!-- collapse_study.py --docs: {data} (generated from the records; edit the tool, not the table) -->",
            f"<!-- end of collapse_study.py --docs: {data} -->")


def rewrite_summaries(doc_text: str, tables: dict[str, list[str]]) -> tuple[str, list[str]]:
    """`doc_text` with the lines between each data set's markers replaced by its table; also the
    data sets that have no markers in it (their tables are not written)."""
    missing = []
    for data, lines in tables.items():
        begin, end = summary_markers(data)
        i, j = doc_text.find(begin), doc_text.find(end)
        if i < 0 or j < i:
            missing.append(data)
            continue
        doc_text = doc_text[:i + len(begin)] + "\n\n" + "\n".join(lines) + "\n\n" + doc_text[j:]
    return doc_text, missing


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gancu", default=str(REPO / "build" / "gancu"))
    ap.add_argument("--out", default="runs/collapse")
    ap.add_argument("--data", nargs="+", default=list(DATA), choices=list(DATA))
    ap.add_argument("--remedy", nargs="+", default=REMEDIES, choices=REMEDIES)
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument("--jobs", type=int, default=1, help="runs at once (each on --threads threads)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=None,
                    help="train this many steps instead of the base preset's (a smoke test; not the study's budget)")
    ap.add_argument("--table", default=None, help="write the Markdown table here (and the evaluations beside it)")
    ap.add_argument("--report", action="store_true", help="train nothing: the table from the recorded evaluations")
    ap.add_argument("--plot", default=None, help="also draw the modes covered per remedy, one panel per data set (PNG)")
    ap.add_argument("--docs", default=None,
                    help="also rewrite each data set's summary (baseline first, then by modes, with seed 1's grid) "
                         "between its markers in this Markdown file")
    ap.add_argument("--print-command", nargs=3, metavar=("DATA", "REMEDY", "SEED"),
                    help="print the gancu train command of one run and exit")
    args = ap.parse_args(argv)
    gancu, out = Path(args.gancu), Path(args.out)
    if args.print_command:
        d, rem, seed = args.print_command
        if d not in DATA or rem not in REMEDIES:
            print(f"collapse_study: data one of {', '.join(DATA)}; remedy one of {', '.join(REMEDIES)}",
                  file=sys.stderr)
            return 2
        print(shlex.join(command(gancu, out / d / rem / f"seed{seed}", d, rem, int(seed), args.threads, args.steps)))
        return 0
    records = Path(args.table).parent if args.table else None
    if args.report and records is None:
        print("collapse_study: --report needs --table (the records live beside it)", file=sys.stderr)
        return 2
    if args.docs and records is None:  # checked before any training, not after it
        print("collapse_study: --docs needs --table (the grids live beside it)", file=sys.stderr)
        return 2
    jobs = [(d, rem, s) for d in args.data for rem in args.remedy for s in args.seeds]

    def one(job):
        d, rem, s = job
        record = records / f"{d}-{rem}-seed{s}.eval.json" if records else None
        if args.report:
            return json.loads(record.read_text()) if record.is_file() else {"pending": True}
        run = out / d / rem / f"seed{s}"
        result = study.train_and_evaluate(gancu, run, command(gancu, run, d, rem, s, args.threads, args.steps),
                                          args.threads, record)
        grid = Path(result.get("grid", ""))
        if records and s == args.seeds[0] and grid.is_file():
            shutil.copyfile(grid, records / f"{d}-{rem}-seed{s}-{grid.name}")
        return result

    with ThreadPoolExecutor(max_workers=1 if args.report else args.jobs) as pool:
        results = dict(zip(jobs, pool.map(one, jobs)))
    study.publish_table(table(args.data, args.remedy, args.seeds, results), args.table)
    if args.docs:
        doc = Path(args.docs)
        text, missing = rewrite_summaries(doc.read_text(), {
            d: summary(d, args.remedy, args.seeds, results, records, doc) for d in args.data})
        doc.write_text(text)
        for d in missing:
            print(f"collapse_study: {doc} has no markers for {d}: {summary_markers(d)[0]}", file=sys.stderr)
    if args.plot:
        plot_modes(args.data, args.remedy, args.seeds, results, Path(args.plot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
