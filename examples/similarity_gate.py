"""Calibrating the similarity repair's gate: when does a copy beat the Mel fill?

Made the gate calibration and the paired tables in the README's "Long gaps" section:

    python examples/similarity_gate.py HELD_OUT_DIR --per-file 2 --json gate.json [--old OLD_similarity.py]
    python examples/similarity_gate.py --from gate.json  # or several, from --shard I/N runs

Punches gaps as `melrestore evaluate --excerpt 60 --per-file N --seed S` does (same places) and
fills each with the best match of the search (always accepted), with the Mel pipeline of
`batch` (its default inpainter and vocoder, waveform repairers off) and, with ``--old``, with an
older ``plugins/similarity.py`` (always, and behind its own gate).  Every gap is scored by LSD;
ViSQOL (the first channel, as `melrestore evaluate` measures it) only on ``--visqol-every``-th
gap, as it takes seconds per gap.  Then it prints, per gap length, what each gate threshold on
the match's ``ratio`` would give (copy when ratio <= threshold, the Mel fill otherwise), and
the threshold picked on one half of the files, scored on the other half.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

import numpy as np

from melrestore.audio import find_audio_files, read
from melrestore.engine import Engine
from melrestore.evaluate import ViSQOL, _excerpt, gap_ms, punch_gaps
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
        ratios, fills["copy"] = {}, {}
        index = search.index(damaged, rate)
        for g in gaps:
            try:
                matches = index.top_matches(g.start, g.end)
            except ValueError:
                continue
            if matches:
                ratios[g] = matches[0].ratio
                fills["copy"][g] = copy_match(damaged, g.start, g.end, matches[0])
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
            if g not in ratios or any(g not in by_gap for by_gap in fills.values()):
                continue
            count += 1
            row = {"file": path.name, "start": g.start, "gap_ms": gap_ms(g, rate), "ratio": ratios[g],
                   "old_accepts": old_accepts.get(g)}
            for method, estimate in estimates.items():
                truth, fill = clean[:, g.start : g.end].astype(np.float64), estimate[:, g.start : g.end]
                row[f"lsd_{method}"] = float(np.mean([log_spectral_distance(t, f) for t, f in zip(truth, fill)]))
                if visqol and count % args.visqol_every == 0:
                    if method == "old" and np.array_equal(fills["old"][g], fills["copy"][g]):
                        row["visqol_old"] = row["visqol_copy"]  # the same stretch: no need to measure again
                    else:
                        row[f"visqol_{method}"] = visqol(clean[:1], estimate[:1], g.start, g.end, rate)
            rows.append(row)
        print(path.name, flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(rows, f)
    return rows


def mean_se(values) -> str:
    values = np.asarray(values, dtype=float)
    se = np.std(values, ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
    return f"{np.mean(values):+.2f} ± {se:.2f}"


def gated(row: dict, metric: str, threshold: float) -> float:
    return row[f"{metric}_copy"] if row["ratio"] <= threshold else row[f"{metric}_mel"]


def report(rows: list[dict], threshold: float) -> None:
    lengths = sorted({r["gap_ms"] for r in rows})
    for metric, better in (("lsd", -1), ("visqol", 1)):
        scored = [r for r in rows if f"{metric}_mel" in r]
        if not scored:
            continue
        print(f"\n{metric}: mean of the gated repair per threshold (copy when ratio <= threshold), n gaps per length")
        print(f"{'threshold':<10}" + "".join(f"{g:>10}" for g in lengths) + f"{'all':>10}")
        print(f"{'n':<10}" + "".join(f"{sum(r['gap_ms'] == g for r in scored):>10}" for g in lengths) + f"{len(scored):>10}")
        for t in THRESHOLDS:
            cells = [np.mean([gated(r, metric, t) for r in scored if r["gap_ms"] == g]) for g in lengths]
            print(f"{t:<10}" + "".join(f"{c:>10.3f}" for c in cells) + f"{np.mean([gated(r, metric, t) for r in scored]):>10.3f}")
        # Held out: pick the threshold on one half of the files, score it on the other half.
        files = sorted({r["file"] for r in scored})
        halves = [set(files[::2]), set(files[1::2])]
        for fit, test in (halves, halves[::-1]):
            best = max(THRESHOLDS, key=lambda t: better * np.mean([gated(r, metric, t) for r in scored if r["file"] in fit]))
            held = [r for r in scored if r["file"] in test]
            gain = [gated(r, metric, best) - r[f"{metric}_mel"] for r in held]
            print(f"picked {best} on {len(fit)} files; on the other {len(test)}: gated minus Mel {mean_se(gain)}")
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
    parser.add_argument("--json", help="write every gap's scores here")
    parser.add_argument("--threshold", type=float, default=SimilarityRepair().max_match_ratio,
                        help="the gate compared with the old one's (default: the plugin's)")
    parser.add_argument("--shard", default="0/1", help="I/N: score only every N-th file from the I-th (gaps stay put)")
    parser.add_argument("--from", dest="source", nargs="+", help="report on scores written before by --json")
    args = parser.parse_args()
    if args.source:
        rows = [row for source in args.source for row in json.load(open(source))]
    else:
        rows = score_gaps(args)
    report(rows, args.threshold)


if __name__ == "__main__":
    main()
