"""Add a method to a finished `melrestore evaluate` run: the same damaged files, the same gaps.

    python examples/add_method.py IN_DIR REPORT_DIR NAME --excerpt 60 \\
        --inpainter unet-torch --checkpoint runs/ablation-refs-l1/best.pt [--mel-only]

Repairs every damaged file the run kept (``REPORT_DIR/damaged/``) with the pipeline given here,
keeps the result under ``REPORT_DIR/repaired/NAME/`` and appends a row per gap to ``metrics.json``,
scored as ``evaluate`` scores (ViSQOL left empty: ``examples/add_visqol.py`` adds it).  This is how
the README's training ablation scores checkpoints that are not shipped: ``evaluate`` itself runs
each inpainter with its own default model file.  IN_DIR and ``--excerpt`` must be the run's own.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from melrestore.audio import find_audio_files, read
from melrestore.evaluate import _excerpt, _write_float
from melrestore.metrics import gap_metrics
from melrestore.pipeline import PipelineOptions, build_engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("in_dir", type=Path)
    parser.add_argument("report", type=Path)
    parser.add_argument("name", help="the new method's name in metrics.json")
    parser.add_argument("--excerpt", type=float)
    parser.add_argument("--inpainter", default="unet-torch")
    parser.add_argument("--checkpoint", help="the inpainter's model file (its `checkpoint` option)")
    parser.add_argument("--mel-only", action="store_true", help="no LSAR or similarity copy: the Mel path alone")
    args = parser.parse_args()

    options = {args.inpainter: {"checkpoint": args.checkpoint}} if args.checkpoint else {}
    mel_only = {"short_gap_ms": 0.0, "long_gap_ms": 0.0} if args.mel_only else {}
    engine = build_engine(PipelineOptions(inpainter=args.inpainter, options=options, **mel_only))
    metrics_path = args.report / "metrics.json"
    result = json.loads(metrics_path.read_text())
    if any(row["method"] == args.name for row in result["gaps"]):
        raise SystemExit(f"{metrics_path} already has rows for {args.name!r}")
    reference_method = "interpolation"  # every method has the same gaps: the new rows start as copies of these
    rows = []
    for source in find_audio_files(args.in_dir):
        name = source.relative_to(args.in_dir).with_suffix(".wav").as_posix()
        gaps = [row for row in result["gaps"] if row["file"] == name and row["method"] == reference_method]
        if not gaps:
            continue
        clean = _excerpt(read(source), args.excerpt)
        damaged = read(args.report / "damaged" / name).as_float()
        rate = gaps[0]["rate"]
        fills, _ = engine.repair(damaged, rate, engine.detect(damaged, rate))
        repaired = damaged.copy()
        for gap, fill in fills.items():
            repaired[:, gap.start : gap.end] = fill
        _write_float(repaired, rate, args.report / "repaired" / args.name / name)
        for row in gaps:
            scores = gap_metrics(clean, repaired, row["start"], row["end"], rate)
            rows.append({**row, **scores, "method": args.name, "visqol_mos": None})
        print(f"{name}: {len(gaps)} gaps", flush=True)
    result["gaps"] += rows
    result["methods"] = [*result["methods"], args.name]
    metrics_path.write_text(json.dumps(result, indent=1))
    print(f"added {len(rows)} rows for {args.name} to {metrics_path}")


if __name__ == "__main__":
    main()
