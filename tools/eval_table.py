#!/usr/bin/env python3
"""A markdown table of `gancu eval --json` outputs, one row per file (for docs/evaluation.md).

    python3 tools/eval_table.py runs/evaluation/*.eval.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

COLUMNS = [
    ("modes", "eval/modes", "{:d}"),
    ("KL", "eval/kl_uniform", "{:.3f}"),
    ("score", "eval/score", "{:.2f}"),
    ("FID (clf)", "eval/fid_classifier", "{:.1f}"),
    ("precision", "eval/precision", "{:.3f}"),
    ("recall", "eval/recall", "{:.3f}"),
    ("F1", "eval/f1", "{:.3f}"),
    ("density", "eval/density", "{:.3f}"),
    ("coverage", "eval/coverage", "{:.3f}"),
]


def main(paths: list[str]) -> int:
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    print("| run | samples | " + " | ".join(name for name, _, _ in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 2) + "|")
    for path in paths:
        try:
            text = Path(path).read_text()
            result = json.loads(text[text.index("{"):])
        except (OSError, ValueError) as e:
            print(f"eval_table: {path}: {e}", file=sys.stderr)
            return 1
        run = Path(path).name.removesuffix(".eval.json")
        cells = [fmt.format(result[key]) if key in result else "" for _, key, fmt in COLUMNS]
        print(f"| {run} | {result.get('samples', '')} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
