"""Add a method to a finished `melrestore evaluate` run: the same damaged files, the same gaps.

    python examples/add_method.py IN_DIR REPORT_DIR NAME --excerpt 60 \\
        --inpainter unet-torch --checkpoint runs/ablation-refs-l1/best.pt [--mel-only]
    python examples/add_method.py IN_DIR REPORT_DIR true-mel-200 --excerpt 60 --true-mel \\
        --options '{"griffin-lim": {"max_iter": 200}}'
    git show 193a16c~1:plugins/similarity.py > old_similarity.py
    python examples/add_method.py IN_DIR REPORT_DIR similarity-old --excerpt 60 --sample-repairer old_similarity.py

Repairs every damaged file the run kept (``REPORT_DIR/damaged/``) with the pipeline given here,
keeps the result under ``REPORT_DIR/repaired/NAME/`` and appends a row per gap to ``metrics.json``,
scored as ``evaluate`` scores (ViSQOL left empty: ``examples/add_visqol.py`` adds it).  This is how
the README's training ablation scores checkpoints that are not shipped: ``evaluate`` itself runs
each inpainter with its own default model file.  ``--true-mel`` scores the ceiling (each gap's own
Mel frames through the vocoder) with the plugin options given, e.g. another vocoder setting.
``--sample-repairer`` scores the ``SimilarityRepair`` of an older ``plugins/similarity.py`` (a file)
as evaluate scores ``similarity``: on every gap, always pasting its best match, a gap it declines
left silent.  IN_DIR and ``--excerpt`` must be the run's own.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from melrestore.audio import read
from melrestore.evaluate import TrueMelEngine, _write, clean_excerpt, report_names
from melrestore.gaps import Gap
from melrestore.inputs import find_audio_files
from melrestore.metrics import gap_metrics
from melrestore.pipeline import PipelineOptions, build_engine
from similarity_study import old_repairer  # the sibling script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("in_dir", type=Path)
    parser.add_argument("report", type=Path)
    parser.add_argument("name", help="the new method's name in metrics.json")
    parser.add_argument("--excerpt", type=float)
    parser.add_argument("--inpainter", default="unet-torch")
    parser.add_argument("--checkpoint", help="the inpainter's model file (its `model_file` option)")
    parser.add_argument("--mel-only", action="store_true", help="no LSAR or similarity copy: the Mel path alone")
    parser.add_argument("--true-mel", action="store_true", help="the ceiling: each gap's own Mel frames (implies --mel-only)")
    parser.add_argument("--options", type=json.loads, default={}, help='plugin options, JSON: {"griffin-lim": {"max_iter": 200}}')
    parser.add_argument("--sample-repairer", type=Path, help="a plugins/similarity.py file: its repairer on every gap, always copying")
    args = parser.parse_args()

    options = {**args.options, **({args.inpainter: {"model_file": args.checkpoint}} if args.checkpoint else {})}
    pipeline = PipelineOptions(inpainter=args.inpainter, options=options)
    if args.mel_only or args.true_mel:
        pipeline = replace(pipeline, short_gap_ms=0.0, long_gap_ms=0.0)
    engine = build_engine(pipeline, TrueMelEngine) if args.true_mel else build_engine(pipeline)
    repairer = old_repairer(args.sample_repairer) if args.sample_repairer else None
    metrics_path = args.report / "metrics.json"
    result = json.loads(metrics_path.read_text())
    if any(row["method"] == args.name for row in result["gaps"]):
        raise SystemExit(f"{metrics_path} already has rows for {args.name!r}")
    subtype = result.get("subtype", "FLOAT")  # the bit depth the run scores in (evaluate --bits)
    reference_method = "interpolation"  # every method has the same gaps: the new rows start as copies of these
    rows = []
    for source, name in report_names(find_audio_files(args.in_dir), args.in_dir).items():
        gaps = [row for row in result["gaps"] if row["file"] == name and row["method"] == reference_method]
        if not gaps:
            continue
        clean = clean_excerpt(read(source), args.excerpt, subtype)
        damaged = read(args.report / "damaged" / name).as_float()
        rate = gaps[0]["rate"]
        if args.true_mel:
            engine.undamaged = clean
        if args.sample_repairer:
            fills = {}
            for row in gaps:
                try:
                    fills[Gap(row["start"], row["end"])] = repairer.repair(damaged, row["start"], row["end"], rate)
                except ValueError:  # declined: left silent, as evaluate leaves it
                    pass
        else:
            fills, _ = engine.repair(damaged, rate, engine.detect(damaged, rate))
        repaired = damaged.copy()
        engine.splice(repaired, fills)
        repaired = _write(repaired, rate, args.report / "repaired" / args.name / name, subtype)  # as the file holds it
        for row in gaps:
            scores = gap_metrics(clean, repaired, row["start"], row["end"], rate)
            rows.append({**row, **scores, "method": args.name, "visqol_mos": None})
        print(f"{name}: {len(gaps)} gaps", flush=True)
    if not rows:
        raise SystemExit(f"no file of {args.in_dir} has gaps in {metrics_path}: is IN_DIR the run's own?")
    result["gaps"] += rows
    result["methods"] = [*result["methods"], args.name]
    metrics_path.write_text(json.dumps(result, indent=1))
    print(f"added {len(rows)} rows for {args.name} to {metrics_path}")


if __name__ == "__main__":
    main()
