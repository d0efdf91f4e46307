"""Add ViSQOL scores to a `melrestore evaluate --no-visqol` run, for chosen methods, in parallel.

    python examples/add_visqol.py IN_DIR REPORT_DIR --excerpt 60 --method unet-onnx --method interpolation [--workers 2]

ViSQOL takes about a second a gap; scoring every method of a large held-out run is hours on two
cores.  This scores only the methods asked for, from the files the run kept
(``REPORT_DIR/repaired/METHOD/``) against the same clean excerpt, with the same ``ViSQOL`` class
``evaluate`` uses, and writes the scores into ``metrics.json`` (IN_DIR and ``--excerpt`` must be
the run's own).
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from melrestore.audio import read
from melrestore.evaluate import ViSQOL, clean_excerpt, report_names
from melrestore.inputs import find_audio_files

_scorer = None


def _score(job):
    global _scorer
    source, repaired, excerpt, subtype, gaps = job
    _scorer = _scorer or ViSQOL()
    clean = clean_excerpt(read(source), excerpt, subtype)
    estimate = read(repaired).as_float()
    return [_scorer(clean, estimate, start, end, rate) for start, end, rate in gaps]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("in_dir", type=Path)
    parser.add_argument("report", type=Path)
    parser.add_argument("--excerpt", type=float)
    parser.add_argument("--method", action="append", required=True)
    parser.add_argument("--min-gap-ms", type=int, default=0, help="score only gaps at least this long")
    parser.add_argument("--max-gap-ms", type=int, help="and at most this long")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    metrics_path = args.report / "metrics.json"
    result = json.loads(metrics_path.read_text())
    sources = {name: p for p, name in report_names(find_audio_files(args.in_dir), args.in_dir).items()}
    todo = {}
    for i, row in enumerate(result["gaps"]):
        long_enough = row["gap_ms"] >= args.min_gap_ms and (args.max_gap_ms is None or row["gap_ms"] <= args.max_gap_ms)
        scored = row.get("lsd_db") is not None  # not a gap the method is left out of (LSAR beyond 60 ms)
        if row["method"] in args.method and long_enough and scored and row.get("visqol_mos") is None:
            todo.setdefault((row["file"], row["method"]), []).append(i)
    subtype = result.get("subtype", "FLOAT")  # the bit depth the run scores in (evaluate --bits)
    jobs = [(sources[f], args.report / "repaired" / m / f, args.excerpt, subtype,
             [(result["gaps"][i]["start"], result["gaps"][i]["end"], result["gaps"][i]["rate"]) for i in rows])
            for (f, m), rows in todo.items()]
    with ProcessPoolExecutor(args.workers) as pool:
        for (key, rows), scores in zip(todo.items(), pool.map(_score, jobs)):
            for i, score in zip(rows, scores):
                result["gaps"][i]["visqol_mos"] = score
            print(f"{key[1]} {key[0]}: {len(scores)} gaps", flush=True)
    partial = metrics_path.with_suffix(".json.partial")
    partial.write_text(json.dumps(result, indent=2))
    partial.replace(metrics_path)


if __name__ == "__main__":
    main()
