#!/usr/bin/env python3
"""gancu against PyTorch on the same presets, batches and thread counts: docs/benchmarks tables.

For each preset and batch it runs
    build/gancu bench --preset P --backend B --batch N --steps S --json
(with OMP_NUM_THREADS and OPENBLAS_NUM_THREADS set to --threads; gancu prints one JSON object
with at least impl, preset, backend, batch, threads, images_per_s, ms_per_iter, phases) and
    tools/bench_pytorch.py --preset P --device B --batch N ... --threads T --json [--compile]
then prints a Markdown table (ratio = gancu images/s / PyTorch images/s, so > 1 means gancu is
faster) and writes every raw JSON line to --raw.

Config keys: --set KEY=VALUE goes to both sides for every run. --variant LABEL:KEY=VALUE,...
(repeatable) runs every preset and batch once per variant, with those keys set on both sides,
and adds a variant column: e.g. the penalized and the plain iteration of the same networks.

Example (a gradient penalty against the same iteration without it; ms/iter are in --raw):
  /usr/bin/python3 tools/bench_compare.py --preset wgan-gp --batch 64 256 --threads 2 \
      --variant wgan-gp:train.loss=wgan-gp --variant plain:train.loss=wgan,train.clip=1e9

Example (what docs/benchmarks/cpu.md is made from):
  /usr/bin/python3 tools/bench_compare.py --preset mlp dcgan dcgan32 --batch 64 256 --threads 2 \\
      --raw docs/benchmarks/cpu.jsonl --out docs/benchmarks/cpu_table.md
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
REPO_ROOT = TOOLS.parent


def parse_json_lines(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


class CommandFailed(RuntimeError):
    """A benchmark command failed; `stdout` keeps what it printed (results may be among it)."""

    def __init__(self, message: str, stdout: str = ""):
        super().__init__(message)
        self.stdout = stdout


def run(cmd: list[str], env: dict, timeout: float, what: str) -> str:
    print(f"$ {' '.join(shlex.quote(c) for c in cmd)}", file=sys.stderr, flush=True)
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        raise CommandFailed(f"{what}: timed out after {timeout:.0f} s", out) from None
    except OSError as e:
        raise CommandFailed(f"{what}: cannot run {cmd[0]}: {e}") from None
    if p.returncode != 0:
        tail = (p.stderr or p.stdout).strip().splitlines()[-5:]
        raise CommandFailed(f"{what}: exit status {p.returncode}: " + " | ".join(tail), p.stdout)
    return p.stdout


def fmt_rate(rec: dict | None) -> str:
    if rec is None:
        return "-"
    if rec.get("images_per_s") is None:
        status = rec.get("status", "no result")
        return "unavailable" if status.startswith("unavailable") else "failed"
    return f"{rec['images_per_s']:,.0f}"


def variant_cost_lines(presets, batches, labels, gancu_res, torch_res) -> list[str]:
    """With two or more variants: each variant's time per iteration as a multiple of the last
    variant's (the baseline, e.g. the same networks without a penalty), in gancu and in PyTorch
    eager, and how much more the variant's gain over PyTorch is than the baseline's."""
    if len(labels) < 2:
        return []
    base = labels[-1]
    ms = lambda r: r.get("ms_per_iter") if r else None  # noqa: E731
    out = ["", f"Time per iteration against the `{base}` variant (x = variant ms ÷ {base} ms):", "",
           "| preset | batch | variant | gancu ms/iter | gancu x | PyTorch ms/iter | PyTorch x |",
           "|---|---|---|---:|---:|---:|---:|"]
    for preset in presets:
        for batch in batches:
            g0, t0 = ms(gancu_res.get((preset, base, batch))), ms(torch_res.get((preset, base, batch, "eager")))
            for label in labels:
                g, t = ms(gancu_res.get((preset, label, batch))), ms(torch_res.get((preset, label, batch, "eager")))
                cost = lambda a, b: f"{a / b:.2f}x" if a and b else "-"  # noqa: E731
                out.append(f"| {preset} | {batch} | {label} | {g:.1f} | {cost(g, g0)} | {t:.1f} | {cost(t, t0)} |"
                           if g and t else f"| {preset} | {batch} | {label} | - | - | - | - |")
    return out


def fmt_ratio(a: dict | None, b: dict | None) -> str:
    if not a or not b or not a.get("images_per_s") or not b.get("images_per_s"):
        return "-"
    return f"{a['images_per_s'] / b['images_per_s']:.2f}x"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", nargs="+", default=["mlp", "dcgan", "dcgan32"])
    ap.add_argument("--batch", nargs="+", type=int, default=[64])
    ap.add_argument("--backend", default="cpu", choices=["cpu", "cuda"], help="gancu backend = PyTorch device")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads for both (default: all cores)")
    ap.add_argument("--steps", type=int, default=20, help="timed iterations (both)")
    ap.add_argument("--warmup", type=int, default=5, help="PyTorch warm-up iterations")
    ap.add_argument("--repeats", type=int, default=3, help="PyTorch timed runs (median)")
    ap.add_argument("--compile", action="store_true", help="also time PyTorch with torch.compile(max-autotune)")
    ap.add_argument("--gancu", default=str(REPO_ROOT / "build" / "gancu"), help="gancu binary (default build/gancu)")
    ap.add_argument("--gancu-arg", action="append", default=[], help="extra argument for gancu bench (repeatable)")
    ap.add_argument("--python", default=sys.executable, help="Python with torch for bench_pytorch.py")
    ap.add_argument("--pytorch-arg", action="append", default=[], help="extra argument for bench_pytorch.py (repeatable)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for both gancu and PyTorch (repeatable)")
    ap.add_argument("--variant", action="append", default=[], metavar="LABEL:KEY=VALUE,...",
                    help="one row group per variant, with these overrides on both sides (repeatable)")
    ap.add_argument("--raw", default=None, help="write every JSON line (gancu and PyTorch) to this file")
    ap.add_argument("--out", default=None, help="also write the Markdown (header and table) to this file")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per command")
    args = ap.parse_args(argv)

    gancu = Path(args.gancu)
    if not gancu.is_file() or not os.access(gancu, os.X_OK):
        print(f"bench_compare: gancu binary {gancu} not found or not executable; build it first "
              f"(cmake -B build && cmake --build build) or pass --gancu PATH", file=sys.stderr)
        return 2
    if args.threads < 1:
        print("bench_compare: --threads must be >= 1", file=sys.stderr)
        return 2
    variants = []  # (label, overrides)
    for v in args.variant:
        label, sep, sets = v.partition(":")
        if not sep or not label or not sets or not all("=" in kv for kv in sets.split(",")):
            print(f"bench_compare: --variant {v}: expected LABEL:KEY=VALUE[,KEY=VALUE...]", file=sys.stderr)
            return 2
        variants.append((label, sets.split(",")))
    if any(a.count("=") < 1 for a in args.set):
        print("bench_compare: --set expects KEY=VALUE", file=sys.stderr)
        return 2
    labels = [label for label, _ in variants]
    variants = variants or [("", [])]

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads))
    # bench_pytorch.py sets torch's threads (--threads) and the BLAS's (--blas-threads) itself.
    torch_env = {k: v for k, v in os.environ.items()
                 if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    raw: list[dict] = []
    gancu_res: dict = {}
    torch_res: dict = {}
    errors = []

    for preset, (label, variant_sets) in ((p, v) for p in args.preset for v in variants):
        sets = [a for kv in args.set + variant_sets for a in ("--set", kv)]
        what = f"{preset}{f' ({label})' if label else ''}"
        for batch in args.batch:
            cmd = [str(gancu), "bench", "--preset", preset, "--backend", args.backend, "--batch", str(batch),
                   "--steps", str(args.steps), "--json", *sets, *args.gancu_arg]
            try:
                recs = [r for r in parse_json_lines(run(cmd, env, args.timeout, f"gancu bench {what} batch {batch}"))
                        if r.get("impl") == "gancu"]
                if not recs:
                    raise RuntimeError(f"gancu bench {what} batch {batch}: printed no JSON object with impl=gancu")
                rec = recs[-1]
                missing = [k for k in ("images_per_s", "ms_per_iter", "batch") if k not in rec]
                if missing:
                    raise RuntimeError(f"gancu bench {what} batch {batch}: JSON lacks {', '.join(missing)}")
                if rec.get("threads") not in (None, args.threads) and args.backend == "cpu":
                    print(f"warning: gancu reports {rec['threads']} threads, asked for {args.threads}", file=sys.stderr)
                rec.setdefault("command", " ".join(cmd))
                if label:
                    rec["variant"] = label
                raw.append(rec)
                gancu_res[(preset, label, batch)] = rec
            except RuntimeError as e:
                errors.append(str(e))
                print(f"error: {e}", file=sys.stderr)

        cmd = [args.python, str(TOOLS / "bench_pytorch.py"), "--preset", preset, "--device", args.backend,
               "--batch", *map(str, args.batch), "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--repeats", str(args.repeats), "--threads", str(args.threads), "--json",
               *(["--compile"] if args.compile else []), *sets, *args.pytorch_arg]
        try:
            out = run(cmd, torch_env, args.timeout * max(1, len(args.batch)), f"bench_pytorch {what}")
        except CommandFailed as e:
            # bench_pytorch exits 1 when a compiled run failed but still prints every record.
            out = e.stdout
            errors.append(str(e))
            print(f"error: {e}", file=sys.stderr)
        for rec in parse_json_lines(out):
            if rec.get("impl") == "pytorch":
                rec.setdefault("command", " ".join(cmd))
                if label:
                    rec["variant"] = label
                raw.append(rec)
                torch_res[(preset, label, rec["batch"], rec["mode"])] = rec

    if args.raw:
        Path(args.raw).parent.mkdir(parents=True, exist_ok=True)
        with open(args.raw, "w") as f:
            for rec in raw:
                f.write(json.dumps(rec) + "\n")

    torch_version = next((r["torch_version"] for r in raw if r.get("impl") == "pytorch"), "?")
    machine = next((r.get("cpu") or r.get("gpu") for r in raw if r.get("impl") == "pytorch" and (r.get("cpu") or r.get("gpu"))), platform.processor())
    blas = next((r.get("torch_blas") for r in raw if r.get("torch_blas")), None)
    lines = [
        f"Measured {datetime.date.today().isoformat()} on {machine}, backend {args.backend}, {args.threads} threads; "
        f"PyTorch {torch_version}" + (f" (BLAS: {blas})" if blas else "") + f"; {args.steps} timed iterations.",
        "Command: `" + " ".join(shlex.quote(a) for a in [Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])]) + "`",
        "",
    ]
    header = ["preset"] + (["variant"] if labels else []) + ["batch", "gancu img/s", "PyTorch eager img/s", "ratio"]
    if args.compile:
        header += ["PyTorch compiled img/s", "ratio"]
    lines.append("| " + " | ".join(header) + " |")
    left = 3 if labels else 2
    lines.append("|" + "|".join(["---"] * left + ["---:"] * (len(header) - left)) + "|")
    for preset, (label, _) in ((p, v) for p in args.preset for v in variants):
        for batch in args.batch:
            g = gancu_res.get((preset, label, batch))
            e = torch_res.get((preset, label, batch, "eager"))
            row = [preset] + ([label] if labels else []) + [str(batch), fmt_rate(g), fmt_rate(e), fmt_ratio(g, e)]
            if args.compile:
                c = torch_res.get((preset, label, batch, "compile"))
                row += [fmt_rate(c), fmt_ratio(g, c)]
            lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append("ratio = gancu images/s ÷ PyTorch images/s (above 1: gancu is faster). "
                 "An iteration is train.d_steps D steps and one G step; images/s = batch ÷ seconds per iteration.")
    lines += variant_cost_lines(args.preset, args.batch, labels, gancu_res, torch_res)
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    if errors:
        print(f"bench_compare: {len(errors)} command(s) failed; see above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
