"""Does anything tell a good copy better than the match ratio?  The similarity gate, on sparse gaps.

    python examples/gate_features_study.py VALIDATION_DIR --seeds 41,42,43,44 --json gate-features.json
    python examples/gate_features_study.py VALIDATION_DIR --gaps 30,50,100,200,400 --seeds 41,42 --no-mix --json a.json
    python examples/gate_features_study.py --from gate-features.json  # or --from a.json --from b.json

Punches one gap of each length (``--gaps``; 1, 2 and 3 s) per 40 s into each whole file (one run
per seed, two in parallel), fills each gap both with the search's best match (always copied, as
``similarity`` would) and with the Mel pipeline of ``batch`` (its default inpainter and vocoder,
waveform repairers off), and scores both with ViSQOL (both channels, as ``evaluate`` does), LSD
and SNR (of both channels pooled, where ``evaluate`` averages the channels' SNRs: the README's
numbers from this script are so), and a mix of the two (0.3 of the copy) with ViSQOL as well (not with ``--no-mix``).  Per
gap it keeps three features the gate could use: the match ``ratio`` (what the gate uses), the
waveform correlation of the copy's source with the known samples beside the gap
(2048 samples of the mono mix each side, the lower of the two: near 1 for a sample-exact repeat),
and how far the two fills disagree (the LSD between them: a copy the network's fill agrees with
might be the right one).  Then it prints, per length, what gates on them would gain over never
copying, against a perfect gate, and what the mix gains; and, for gates on the ratio alone, how the
copies they accept compare with the Mel fill on ViSQOL, LSD and SNR.  The README's known
limitations and "Finding the repeat" quote it.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

from melrestore.audio import read
from melrestore.evaluate import ViSQOL, punch_gaps
from melrestore.inputs import find_audio_files
from melrestore.metrics import log_spectral_distance, snr
from melrestore.pipeline import PipelineOptions, build_engine
from melrestore.plugins.similarity import SimilarityRepair, copy_match
from similarity_gate import mean_se  # the sibling script

EDGE_SAMPLES = 2048
SECONDS_PER_SET = 40  # one gap of each length per this many seconds: sparse damage
MIX = 0.3  # of the copy, in the mixed fill


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (np.sqrt((a * a).sum() * (b * b).sum()) + 1e-12))


def channel_lsd(a: np.ndarray, b: np.ndarray) -> float:
    """LSD of ``b`` against ``a`` (both ``[channels, samples]``), per channel then averaged."""
    return float(np.mean([log_spectral_distance(x.astype(np.float64), y.astype(np.float64)) for x, y in zip(a, b)]))


def damaged_files(folder: Path, lengths, seconds_per_set: float, rng: np.random.Generator):
    """Each whole file of ``folder`` with one gap of each length (ms) per ``seconds_per_set`` punched
    in at seeded places (as ``evaluate`` places them): ``(path, clean, damaged, rate, gaps)``."""
    for path in find_audio_files(folder):
        audio = read(path)
        clean, rate = audio.as_float(), audio.sample_rate
        sets = max(1, int(clean.shape[1] / rate / seconds_per_set))
        gaps = punch_gaps(clean.shape[1], rate, list(lengths) * sets, rng)
        damaged = clean.copy()
        for g in gaps:
            damaged[:, g.start : g.end] = 0.0
        yield path, clean, damaged, rate, gaps


def score_seed(job: tuple[Path, int, tuple[int, ...], bool]) -> list[dict]:
    folder, seed, lengths, mix = job
    mel = build_engine(replace(PipelineOptions(), short_gap_ms=0.0, long_gap_ms=0.0))
    search, visqol = SimilarityRepair(), ViSQOL()
    rows = []
    for path, clean, damaged, rate, gaps in damaged_files(folder, lengths, SECONDS_PER_SET, np.random.default_rng(seed)):
        mel_fills = mel.repair(damaged, rate, gaps)[0]
        index = search.index(damaged, rate)
        mono = damaged.mean(axis=0)
        for g in gaps:
            try:
                matches = index.top_matches(g.start, g.end, k=1)
            except ValueError:  # too little clean context: the gate never sees this gap
                continue
            if not matches or g not in mel_fills:
                continue
            match, n = matches[0], EDGE_SAMPLES
            shift = match.shift_samples
            before = correlation(mono[g.start - n : g.start], mono[g.start + shift - n : g.start + shift])
            after = correlation(mono[g.end : g.end + n], mono[g.end + shift : g.end + shift + n])
            copy, mel_fill = copy_match(damaged, g.start, g.end, match, rate), mel_fills[g]
            scores, truth = {}, clean[:, g.start : g.end]
            fills = {"copy": copy, "mel": mel_fill, **({"mix": MIX * copy + (1 - MIX) * mel_fill} if mix else {})}
            for method, fill in fills.items():
                estimate = damaged.copy()
                estimate[:, g.start : g.end] = fill
                scores[f"visqol_{method}"] = visqol(clean, estimate, g.start, g.end, rate)
                scores[f"lsd_{method}"] = channel_lsd(truth, fill)
                scores[f"snr_{method}"] = snr(truth.ravel().astype(np.float64), fill.ravel().astype(np.float64))
            rows.append({"file": path.name, "seed": seed, "start": g.start, "gap_ms": int(round(1000 * g.length / rate)),
                         "ratio": match.ratio, "edge_correlation": min(before, after),
                         "fills_lsd": channel_lsd(copy, mel_fill), **scores})
    return rows


def report(rows: list[dict]) -> None:
    shipped = SimilarityRepair()
    print("gain in ViSQOL over never copying, by gate (copy when ...):")
    for length in sorted({row["gap_ms"] for row in rows}):
        r = [row for row in rows if row["gap_ms"] == length]
        gain = np.array([row["visqol_copy"] - row["visqol_mel"] for row in r])
        ratio = np.array([row["ratio"] for row in r])
        edge = np.array([row["edge_correlation"] for row in r])
        apart = np.array([row["fills_lsd"] for row in r])
        limit = shipped.limit(length, 1000)  # the gate for this length: milliseconds as samples at 1000 Hz
        gates = {"perfect (copy when it scores higher)": gain > 0,
                 **{f"ratio <= {t}" + (" (shipped)" if t == limit else ""): ratio <= t for t in (0.6, 0.7, 0.8, 0.9)},
                 **{f"edge correlation > {t}": edge > t for t in (0.7, 0.9)},
                 **{f"ratio <= 0.8 or edge correlation > {t}": (ratio <= 0.8) | (edge > t) for t in (0.7, 0.9)},
                 **{f"fills within {t} dB LSD": apart < t for t in (9, 10)},
                 **{f"ratio <= 0.8 and fills within {t} dB LSD": (ratio <= 0.8) & (apart < t) for t in (10, 12)}}
        print(f"\n{length} ms, {len(r)} gaps; correlation with the copy's gain: ratio {np.corrcoef(ratio, gain)[0, 1]:+.2f}, "
              f"edge correlation {np.corrcoef(edge, gain)[0, 1]:+.2f}, the fills' LSD {np.corrcoef(apart, gain)[0, 1]:+.2f}")
        for name, copy in gates.items():
            print(f"  {name:42s} {np.where(copy, gain, 0).mean():+.3f}  ({copy.sum()} copied)")
        if "visqol_mix" in r[0]:
            mixed = np.array([row["visqol_mix"] - row["visqol_mel"] for row in r])
            print(f"  the mix ({MIX} of the copy) in every gap: {mean_se(mixed, 3)}; where ratio <= 0.8: "
                  f"{np.where(ratio <= 0.8, mixed, 0).mean():+.3f}")
        if "lsd_copy" in r[0]:
            print("  the copies a ratio gate accepts, copy minus Mel fill (mean ± SE): ViSQOL / LSD (dB) / SNR (dB)")
            for t in (0.6, 0.8, 1.0, np.inf):
                took = [row for row, copy in zip(r, ratio <= t) if copy]
                diff = {m: [row[f"{m}_copy"] - row[f"{m}_mel"] for row in took] for m in ("visqol", "lsd", "snr")}
                print(f"    ratio <= {t:<4} ({len(took):3d}): {' / '.join(mean_se(diff[m], 3) for m in ('visqol', 'lsd', 'snr'))}")


def main() -> None:
    parser = run_parser(__doc__, seeds="41,42,43,44", gaps="1000,2000,3000", seconds_per_set=SECONDS_PER_SET)
    parser.add_argument("--no-mix", action="store_true", help="do not score the mix of the two fills (a ViSQOL less per gap)")
    args = parse_run_arguments(parser)
    report(scored_rows(args, score_seed, lambda seed, lengths: (args.folder, seed, lengths, not args.no_mix)))


def run_parser(doc: str, seeds: str, gaps: str, seconds_per_set: float) -> argparse.ArgumentParser:
    """The options a study of seeded runs shares: the folder, ``--seeds``, ``--gaps`` (these defaults),
    ``--json`` and ``--from``; a study adds its own before :func:`parse_run_arguments`."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("folder", type=Path, nargs="?")
    parser.add_argument("--seeds", default=seeds)
    parser.add_argument("--gaps", default=gaps, help=f"gap lengths (ms), one of each per {seconds_per_set:g} s")
    parser.add_argument("--json", type=Path, help="write the per-gap rows here")
    parser.add_argument("--from", dest="from_json", type=Path, action="append",
                        help="report on rows written before (repeat to pool runs of other seeds)")
    return parser


def parse_run_arguments(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The arguments of a :func:`run_parser` parser; a folder or ``--from`` required."""
    args = parser.parse_args()
    if not args.from_json and args.folder is None:
        parser.error("give a folder of validation recordings, or --from")
    return args


def scored_rows(args: argparse.Namespace, score_seed, job) -> list[dict]:
    """The per-gap rows: read from the ``--from`` files, or scored afresh, ``score_seed(job(seed,
    lengths))`` for each of ``--seeds`` (two processes at once), and written to ``--json``."""
    if args.from_json:
        return sum((json.loads(path.read_text()) for path in args.from_json), [])
    lengths = tuple(int(ms) for ms in args.gaps.split(","))
    with ProcessPoolExecutor(2) as pool:
        rows = sum(pool.map(score_seed, [job(int(s), lengths) for s in args.seeds.split(",")]), [])
    if args.json:
        args.json.write_text(json.dumps(rows))
    return rows


if __name__ == "__main__":
    main()
