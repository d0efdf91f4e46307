"""Calibrating the similarity repair's gate: when does a copy beat the Mel fill?

Made the gate calibration and the held-out check in the README's "Finding the repeat" section:

    python examples/similarity_gate.py VALIDATION_DIR --gaps 1000,2000,3000 --per-file 2 \
        --visqol-every 1 --json gate.json [--old OLD_similarity.py] [--shard I/N]
    python examples/similarity_gate.py --from gate.json  # or several, from --shard I/N runs
    python examples/similarity_gate.py --evaluate-run REPORT_DIR  # a finished `melrestore evaluate`

Punches gaps as `melrestore evaluate --excerpt 60 --per-file N --seed S` does (same places) and
fills each with the best match of the search (always accepted), with the Mel pipeline of
`batch` (its default inpainter and vocoder, waveform repairers off) and, with ``--old``, with an
older ``plugins/similarity.py`` (always, and behind its own gate).  Every gap is scored by LSD;
ViSQOL (the first channel) on every ``--visqol-every``-th gap, as it takes seconds per gap.
``--evaluate-run`` takes the same scores from an evaluate run's `similarity` and U-Net rows
instead (both channels, as evaluate scores them) and only searches its damaged files for the
match.  Then it prints, per gap length, what each gate threshold on the match's ``ratio`` would
give (copy when ratio <= threshold, the Mel fill otherwise), the threshold picked on all files
but one and scored on that one, and the plugin's own gate against the Mel fill, always copying
and (with ``--evaluate-run``) the interpolation.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from melrestore.audio import read
from melrestore.engine import Engine
from melrestore.evaluate import ViSQOL, _excerpt, gap_ms, punch_gaps
from melrestore.inputs import find_audio_files
from melrestore.metrics import log_spectral_distance
from melrestore.pipeline import PipelineOptions, build_engine
from melrestore.plugins.similarity import SimilarityRepair, copy_match
from similarity_study import old_repairer  # the sibling script

THRESHOLDS = (0.0, 0.6, 0.7, 0.8, 0.9, 1.0, 1.05, 1.1, 1.15, 1.2, 1.3, 1.5, np.inf)


def score_gaps(args) -> list[dict]:
    lengths = [int(g) for g in args.gaps.split(",")]
    mel = build_engine(replace(PipelineOptions(), short_gap_ms=0.0, long_gap_ms=0.0))
    search = SimilarityRepair()
    old = old_repairer(args.old) if args.old else None
    visqol = ViSQOL() if args.visqol_every else None
    rng = np.random.default_rng(args.seed)
    shard, shards = (int(n) for n in args.shard.split("/"))
    rows, count = [], 0
    for number, path in enumerate(find_audio_files(args.folder)):
        audio = read(path)
        clean, rate = _excerpt(audio, args.excerpt), audio.sample_rate
        gaps = punch_gaps(clean.shape[1], rate, lengths * args.per_file, rng)  # drawn for every file: same places
        if number % shards != shard:
            continue
        damaged = clean.copy()
        for g in gaps:
            damaged[:, g.start : g.end] = 0.0
        fills = {"mel": mel.repair(damaged, rate, gaps)[0]}
        found, fills["copy"] = {}, {}
        index = search.index(damaged, rate)
        for g in gaps:
            try:
                matches = index.top_matches(g.start, g.end, k=2)
            except ValueError:
                continue
            if matches:
                found[g] = matches
                fills["copy"][g] = copy_match(damaged, g.start, g.end, matches[0], rate)
        old_accepts = {}
        if old is not None:
            fills["old"] = {}
            for g in gaps:
                try:
                    fills["old"][g] = old.repair(damaged, g.start, g.end, rate)
                except ValueError:
                    continue
                old.max_match_ratio = 0.8
                try:
                    old.repair(damaged, g.start, g.end, rate)
                    old_accepts[g] = True
                except ValueError:
                    old_accepts[g] = False
                old.max_match_ratio = np.inf
        estimates = {}
        for method, by_gap in fills.items():
            estimates[method] = damaged.copy()
            Engine.splice(estimates[method], by_gap)
        for g in gaps:
            if g not in found or any(g not in by_gap for by_gap in fills.values()):
                continue
            count += 1
            best, *others = found[g]
            row = {"file": path.name, "start": g.start, "gap_ms": gap_ms(g, rate), "ratio": best.ratio,
                   "distance": best.distance, "ratio_second": others[0].ratio if others else None,
                   "old_accepts": old_accepts.get(g)}
            for method, estimate in estimates.items():
                truth, fill = clean[:, g.start : g.end].astype(np.float64), estimate[:, g.start : g.end]
                row[f"lsd_{method}"] = float(np.mean([log_spectral_distance(t, f) for t, f in zip(truth, fill)]))
                if visqol and count % args.visqol_every == 0:
                    if method != "mel" and row["ratio"] > args.visqol_max_ratio:
                        continue  # no gate considered would take this copy: spare the seconds
                    if method == "old" and np.array_equal(fills["old"][g], fills["copy"][g]):
                        row["visqol_old"] = row["visqol_copy"]  # the same stretch: no need to measure again
                    else:
                        row[f"visqol_{method}"] = visqol(clean[:1], estimate[:1], g.start, g.end, rate)
            rows.append(row)
            print(f"{path.name} {row['gap_ms']} ms ratio {row['ratio']:.2f}", flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(rows, f)
    return rows


def rows_from_evaluate_run(report_dir: Path, copy_method: str, mel_method: str, default_method: str,
                           min_gap_ms: int) -> list[dict]:
    """The same rows from a finished `melrestore evaluate` run: the copy's and the Mel fill's
    scores are those of its ``copy_method`` and ``mel_method`` rows (and ``default_method``'s
    kept to check the gate against), the match features are searched afresh on its damaged files."""
    result = json.loads((report_dir / "metrics.json").read_text())
    by_gap: dict[tuple, dict] = {}
    for r in result["gaps"]:
        if r["gap_ms"] >= min_gap_ms:
            by_gap.setdefault((r["file"], r["start"], r["end"], r["gap_ms"]), {})[r["method"]] = r
    search = SimilarityRepair()
    rows = []
    for name in sorted({key[0] for key in by_gap}):
        damaged = read(report_dir / "damaged" / name)
        index = search.index(damaged.as_float(), damaged.sample_rate)
        for (file, start, end, length_ms), scores in sorted(by_gap.items()):
            if file != name:
                continue
            try:
                matches = index.top_matches(start, end, k=2)
            except ValueError:
                matches = []
            row = {"file": file, "start": start, "gap_ms": length_ms, "ratio": matches[0].ratio if matches else np.inf,
                   "distance": matches[0].distance if matches else None,
                   "ratio_second": matches[1].ratio if len(matches) > 1 else None}
            for key, method in (("copy", copy_method), ("mel", mel_method), ("default", default_method),
                                ("interpolation", "interpolation")):
                row[f"lsd_{key}"] = scores[method]["lsd_db"]
                if scores[method].get("visqol_mos") is not None:
                    row[f"visqol_{key}"] = scores[method]["visqol_mos"]
            rows.append(row)
        print(name, flush=True)
    return rows


def mean_se(values, digits: int = 2) -> str:
    """``mean ± standard error`` of ``values`` (nan for one value, "-" for none)."""
    values = np.asarray(values, dtype=float)
    if not len(values):
        return "-"
    se = np.std(values, ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
    return f"{np.mean(values):+.{digits}f} ± {se:.{digits}f}"


def gated(row: dict, metric: str, threshold: float) -> float:
    return row[f"{metric}_copy"] if row["ratio"] <= threshold else row[f"{metric}_mel"]


def shipped(row: dict, metric: str, gate: SimilarityRepair) -> float:
    """The score of the plugin's own gate (its limit for this gap length; lengths in ms, so a rate of 1000)."""
    return gated(row, metric, gate.limit(row["gap_ms"], 1000))


def leave_one_file_out(rows: list[dict], metric: str, thresholds: list[float], better: int) -> tuple[list[float], list[float]]:
    """For each file, the threshold that is best on all the other files, and what it gives on this
    one (gated minus Mel, per gap): a rule chosen without seeing the gaps it is scored on."""
    picks, gains = [], []
    for held in sorted({r["file"] for r in rows}):
        fit = [r for r in rows if r["file"] != held]
        best = max(thresholds, key=lambda t: better * np.mean([gated(r, metric, t) for r in fit]))
        picks.append(best)
        gains += [gated(r, metric, best) - r[f"{metric}_mel"] for r in rows if r["file"] == held]
    return picks, gains


def report(rows: list[dict], threshold: float) -> None:
    lengths = sorted({r["gap_ms"] for r in rows})
    gate = SimilarityRepair()
    bands = {f"under {gate.long_gap_s:g} s": lambda ms: ms < 1000 * gate.long_gap_s,
             f"from {gate.long_gap_s:g} s": lambda ms: ms >= 1000 * gate.long_gap_s}
    for metric, better in (("lsd", -1), ("visqol", 1)):
        scored = [r for r in rows if f"{metric}_mel" in r]
        if not scored:
            continue
        unscored_copy = min((r["ratio"] for r in scored if f"{metric}_copy" not in r), default=np.inf)
        thresholds = [t for t in THRESHOLDS if t < unscored_copy]
        print(f"\n{metric}: mean of the gated repair per threshold (copy when ratio <= threshold), n gaps per length")
        print(f"{'threshold':<10}" + "".join(f"{g:>10}" for g in lengths) + f"{'all':>10}")
        print(f"{'n':<10}" + "".join(f"{sum(r['gap_ms'] == g for r in scored):>10}" for g in lengths) + f"{len(scored):>10}")
        for t in thresholds:
            cells = [np.mean([gated(r, metric, t) for r in scored if r["gap_ms"] == g]) for g in lengths]
            print(f"{t:<10}" + "".join(f"{c:>10.3f}" for c in cells) + f"{np.mean([gated(r, metric, t) for r in scored]):>10.3f}")
        for band, inside in bands.items():
            here = [r for r in scored if inside(r["gap_ms"])]
            if here:
                picks, gains = leave_one_file_out(here, metric, thresholds, better)
                print(f"{band}: threshold picked on the other files, per file left out {picks}; "
                      f"on the file left out, gated minus Mel {mean_se(gains)} (n={len(gains)})")
        print(f"\n{metric}, the plugin's gate (ratio <= {gate.max_match_ratio} under {gate.long_gap_s:g} s, "
              f"<= {gate.long_gap_max_match_ratio} from there), paired per length, mean ± standard error")
        for g in lengths:
            same = [r for r in scored if r["gap_ms"] == g]
            if not same:
                continue
            default = [shipped(r, metric, gate) for r in same]
            copies = sum(r["ratio"] <= gate.limit(g, 1000) for r in same)
            line = f"{g:>6} ms"
            for other, label in (("mel", "Mel"), ("copy", "always copying"), ("interpolation", "interpolation")):
                if all(f"{metric}_{other}" in r for r in same):
                    line += f"   minus {label} {mean_se(np.subtract(default, [r[f'{metric}_{other}'] for r in same]))}"
            print(f"{line}   copies {copies} of {len(same)}")
        if f"{metric}_old" in scored[0]:
            print(f"\n{metric}, paired, mean ± standard error over the same gaps (new minus old)")
            for g in lengths:
                same = [r for r in scored if r["gap_ms"] == g]
                always = [r[f"{metric}_copy"] - r[f"{metric}_old"] for r in same]
                old_default = [r[f"{metric}_old"] if r["old_accepts"] else r[f"{metric}_mel"] for r in same]
                new_default = [gated(r, metric, threshold) for r in same]
                print(f"{g:>6} ms  always: {mean_se(always)}   gated ({threshold} vs old's 0.8): "
                      f"{mean_se(np.subtract(new_default, old_default))}   n={len(same)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?")
    parser.add_argument("--gaps", default="200,400,1000,2000,3000")
    parser.add_argument("--per-file", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--excerpt", type=float, default=60.0)
    parser.add_argument("--old", help="an older plugins/similarity.py to compare with")
    parser.add_argument("--visqol-every", type=int, default=0, help="ViSQOL on every N-th gap (0: none)")
    parser.add_argument("--visqol-max-ratio", type=float, default=np.inf,
                        help="score a copy's ViSQOL only where its ratio is at most this (the Mel fill always)")
    parser.add_argument("--json", help="write every gap's scores here")
    parser.add_argument("--threshold", type=float, default=SimilarityRepair().max_match_ratio,
                        help="the gate compared with the old one's (default: the plugin's)")
    parser.add_argument("--shard", default="0/1", help="I/N: score only every N-th file from the I-th (gaps stay put)")
    parser.add_argument("--from", dest="source", nargs="+", help="report on scores written before by --json")
    parser.add_argument("--evaluate-run", type=Path, help="take the fills' scores from this `melrestore evaluate` report")
    parser.add_argument("--min-gap-ms", type=int, default=150, help="with --evaluate-run: gaps at least this long")
    args = parser.parse_args()
    if args.source:
        rows = [row for source in args.source for row in json.load(open(source))]
    elif args.evaluate_run:
        rows = rows_from_evaluate_run(args.evaluate_run, "similarity", "unet-onnx", "batch-default", args.min_gap_ms)
    else:
        rows = score_gaps(args)
    if args.json:
        Path(args.json).write_text(json.dumps(rows))
    report(rows, args.threshold)


if __name__ == "__main__":
    main()
