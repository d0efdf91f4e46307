"""Score a float `melrestore evaluate` run again as 16- or 24-bit files would hold its audio.

    python examples/rescore_bits.py TEST_DIR eval-dir --excerpt 60 [--bits 16] [--method unet-onnx ...]
    python examples/paired_table.py eval-dir/metrics-16bit.json --method unet-onnx --against interpolation --metric lsd_db

The original excerpt and every repaired file are rounded to the depth (as ``evaluate --bits``
writes them) and each gap's LSD, SNR, log-Mel L1 and spectral convergence are computed again;
the repairs themselves are not rerun, so the fills are the float run's.  ViSQOL is left out.
Writes ``metrics-{bits}bit.json`` next to the run's ``metrics.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from melrestore.audio import read
from melrestore.evaluate import _as_stored, clean_excerpt, report_names, summarise_scores
from melrestore.inputs import find_audio_files
from melrestore.metrics import gap_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("in_dir", type=Path)
    parser.add_argument("report", type=Path)
    parser.add_argument("--excerpt", type=float)
    parser.add_argument("--bits", type=int, choices=(16, 24), default=16)
    parser.add_argument("--method", action="append", help="only these methods [default: all with files]")
    args = parser.parse_args()
    subtype = f"PCM_{args.bits}"
    result = json.loads((args.report / "metrics.json").read_text())
    if result.get("subtype", "FLOAT") != "FLOAT":
        raise SystemExit(f"{args.report} was scored as {result['subtype']} already")
    sources = {name: p for p, name in report_names(find_audio_files(args.in_dir), args.in_dir).items()}
    methods = set(args.method or result["methods"]) - {"zeros"}
    rows = []
    for name in sorted({row["file"] for row in result["gaps"]}):
        clean = clean_excerpt(read(sources[name]), args.excerpt, subtype)
        for method in sorted(methods):
            path = args.report / "repaired" / method / name
            if not path.exists():
                continue
            estimate = _as_stored(read(path).as_float(), subtype)
            for row in result["gaps"]:
                if row["file"] == name and row["method"] == method:
                    scored = row.get("lsd_db") is not None  # a gap the method is left out of stays unscored
                    rows.append({**row, **(gap_metrics(clean, estimate, row["start"], row["end"], row["rate"]) if scored else {}),
                                 "visqol_mos": None})
        print(name, flush=True)
    out = args.report / f"metrics-{args.bits}bit.json"
    rescored = {**result, "subtype": subtype, "methods": [m for m in result["methods"] if m in methods], "summary": summarise_scores(rows), "gaps": rows}
    out.write_text(json.dumps(rescored, indent=1))
    print(f"wrote {out} ({len(rows)} gaps)")


if __name__ == "__main__":
    main()
