"""Paired differences between two methods of one or more `melrestore evaluate` runs, per gap length.

    python examples/paired_table.py eval-0/metrics.json eval-1/metrics.json \\
        --method unet-onnx --against interpolation --metric lsd_db --metric visqol_mos [--files singularity-]

Each gap is scored by every method at the same place, so the difference is taken gap by gap;
the table shows its mean +- standard error, and how many gaps.  ``--files`` keeps only files
whose name starts with one of the given prefixes (e.g. the held-out package).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

import numpy as np


def paired(rows: list[dict], method: str, against: str, metric: str) -> dict[int, np.ndarray]:
    """Gap length (ms) -> per-gap differences ``method - against`` for gaps both scored."""
    scores = defaultdict(dict)
    for row in rows:
        if row.get(metric) is not None:
            scores[(row["file"], row["start"], row["gap_ms"])][row["method"]] = row[metric]
    out = defaultdict(list)
    for (_, _, ms), by_method in scores.items():
        if method in by_method and against in by_method:
            out[ms].append(by_method[method] - by_method[against])
    return {ms: np.array(v) for ms, v in sorted(out.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("metrics", nargs="+", help="metrics.json files of evaluate runs (pooled)")
    parser.add_argument("--method", required=True)
    parser.add_argument("--against", action="append", required=True)
    parser.add_argument("--metric", action="append", required=True, help="lsd_db, snr_db, log_mel_l1, visqol_mos, ...")
    parser.add_argument("--files", action="append", help="only files whose name starts with this")
    args = parser.parse_args()
    rows = []
    for path in args.metrics:
        # Runs with different seeds score different gaps: keep them apart.
        run = json.load(open(path))
        rows += [{**r, "file": f"{path}:{r['file']}"} for r in run["gaps"]
                 if not args.files or any(r["file"].startswith(p) for p in args.files)]
    for metric in args.metric:
        for against in args.against:
            table = paired(rows, args.method, against, metric)
            print(f"| {args.method} minus {against}, {metric} | " + " | ".join(f"{ms} ms" for ms in table) + " |")
            print("| --- " * (len(table) + 1) + "|")
            cells = [f"{d.mean():+.2f} ± {d.std(ddof=1) / np.sqrt(len(d)):.2f} ({len(d)})" for d in table.values()]
            print("| | " + " | ".join(cells) + " |\n")


if __name__ == "__main__":
    main()
