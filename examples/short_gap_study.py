"""Where should LSAR hand short gaps to the Mel pipeline?  Both, and a classical extrapolation, gap by gap.

    python examples/short_gap_study.py VALIDATION_DIR --gaps 5,10,15,20,30,50,100 --seeds 41,42 --json short.json
    python examples/short_gap_study.py --from short.json
    python examples/short_gap_study.py VALIDATION_DIR --gaps 30,50,100 --methods mel-plain,mel-edges-20 --json edges.json

Punches one gap of each length (``--gaps``, ms) per 20 s into each whole file (one run per seed,
two in parallel) and fills every gap three ways: the Mel pipeline of ``batch`` (its default
inpainter and vocoder, waveform repairers off), LSAR as ``batch`` runs it below ``short_gap_ms``
(``plugins/lsar.py``), and autoregressive extrapolation, the classical packet-loss repair: a
Burg model of order 1024 fitted on 16384 samples each side, run forward from the left and
backward from the right, the two crossfaded over the gap (after Etter, 1996).  Scores each fill
as ``evaluate`` does (LSD, SNR, log-Mel L1 per channel, ViSQOL on the gap and a second each side;
ViSQOL gives no score where the excerpt is near silence) and prints, per length, each method minus
the Mel fill (mean ± standard error, paired).  ``--methods`` may also name the Mel fill with other
extrapolated edges (``mel-edges-20``: 20 ms each side; ``mel-plain``: none) to compare with the
shipped length.  The
README's "Short gaps: where LSAR stops" quotes it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from melrestore.autoregressive import extrapolate
from melrestore.evaluate import ViSQOL
from melrestore.metrics import gap_metrics
from melrestore.pipeline import PipelineOptions, build_engine
from melrestore.plugins.lsar import LSAR
from gate_features_study import damaged_files, parse_run_arguments, run_parser, scored_rows  # the sibling scripts
from similarity_gate import mean_se

SECONDS_PER_SET = 20  # one gap of each length per this many seconds
AR_ORDER, AR_CONTEXT = 1024, 16384
METRICS = ("visqol_mos", "lsd_db", "snr_db", "log_mel_l1")


def burg(x: np.ndarray, order: int) -> np.ndarray:
    """Prediction-error filter ``[1, a1, ..., ap]`` of ``x`` by Burg's method (always stable)."""
    forward, backward, a = x[1:].copy(), x[:-1].copy(), np.array([1.0])
    for _ in range(order):
        k = -2 * np.dot(forward, backward) / (np.dot(forward, forward) + np.dot(backward, backward) + 1e-18)
        a = np.concatenate([a, [0.0]])
        a = a + k * a[::-1]
        forward, backward = forward[1:] + k * backward[1:], backward[:-1] + k * forward[:-1]
    return a


def predict(history: np.ndarray, n: int) -> np.ndarray:
    """``n`` samples that continue ``history`` under its own Burg model."""
    return extrapolate(history, n, AR_ORDER, fit=lambda pieces, order: burg(pieces[0], order))


def ar_extrapolation(audio: np.ndarray, start: int, end: int) -> np.ndarray:
    """Forward and backward AR predictions crossfaded (sine-squared) over ``start:end``, per channel."""
    n = end - start
    fade = np.sin(0.5 * np.pi * (np.arange(n) + 0.5) / n) ** 2
    out = []
    for channel in audio.astype(np.float64):
        left, right = channel[max(0, start - AR_CONTEXT) : start], channel[end : end + AR_CONTEXT]
        out.append((1 - fade) * predict(left, n) + fade * predict(right[::-1].copy(), n)[::-1])
    return np.clip(np.array(out, dtype=np.float32), -1, 1)


def edge_ms(method: str) -> float | None:
    """The extrapolated edges' length of a Mel method (``mel-edges-20``: 20 ms; ``mel-plain``: 0), else None."""
    if method == "mel-plain":
        return 0.0
    return float(method.removeprefix("mel-edges-")) if method.startswith("mel-edges-") else None


def score_seed(job: tuple[Path, int, tuple[int, ...], tuple[str, ...]]) -> list[dict]:
    folder, seed, lengths, methods = job
    mel_path = replace(PipelineOptions(), short_gap_ms=0.0, long_gap_ms=0.0)
    mel_engines = {"mel": build_engine(mel_path)}
    mel_engines.update({m: build_engine(replace(mel_path, edge_extrapolation_ms=edge_ms(m))) for m in methods if edge_ms(m) is not None})
    lsar, visqol = LSAR(), ViSQOL()
    rows = []
    for path, clean, damaged, rate, gaps in damaged_files(folder, lengths, SECONDS_PER_SET, np.random.default_rng(seed)):
        mel_fills = {m: engine.repair(damaged, rate, gaps)[0] for m, engine in mel_engines.items()}

        def fill_of(method: str, g) -> np.ndarray:
            if method in mel_fills:
                return mel_fills[method][g]
            if method == "lsar":
                return lsar.repair(damaged, g.start, g.end, rate)
            return ar_extrapolation(damaged, g.start, g.end)

        for g in gaps:
            if g not in mel_fills["mel"]:
                continue
            fills = {method: fill_of(method, g) for method in ("mel", *methods)}
            row = {"file": path.name, "seed": seed, "start": g.start, "gap_ms": int(round(1000 * g.length / rate))}
            for method, fill in fills.items():
                estimate = damaged.copy()
                estimate[:, g.start : g.end] = fill
                scores = {**gap_metrics(clean, estimate, g.start, g.end, rate),
                          "visqol_mos": visqol(clean, estimate, g.start, g.end, rate)}
                row.update({f"{m}_{method}": scores[m] for m in METRICS})
            rows.append(row)
    return rows


def report(rows: list[dict]) -> None:
    print("each method minus the Mel fill, mean ± standard error (ViSQOL, LSD dB, SNR dB, log-Mel L1):")
    for length in sorted({row["gap_ms"] for row in rows}):
        r = [row for row in rows if row["gap_ms"] == length]
        mel = " / ".join(f"{np.nanmean([row[f'{m}_mel'] for row in r]):.3f}" for m in METRICS)
        silent = sum(not np.isfinite(row["visqol_mos_mel"]) for row in r)
        print(f"\n{length} ms, {len(r)} gaps ({silent} that ViSQOL cannot score: left out of its means); "
              f"the Mel fill's means: {mel}")
        for method in [key.removeprefix("lsd_db_") for key in r[0] if key.startswith("lsd_db_") and key != "lsd_db_mel"]:
            diffs = [[row[f"{m}_{method}"] - row[f"{m}_mel"] for row in r] for m in METRICS]
            print(f"  {method:12s} {' / '.join(mean_se([d for d in ds if np.isfinite(d)], 3) for ds in diffs)}")


def main() -> None:
    parser = run_parser(__doc__, seeds="41,42", gaps="5,10,15,20,30,50,100", seconds_per_set=SECONDS_PER_SET)
    parser.add_argument("--methods", default="lsar,ar",
                        help="what to score against the Mel fill: lsar, ar, mel-plain (the Mel fill without its extrapolated edges), "
                             "mel-edges-MS (with edges of MS ms)")
    args = parse_run_arguments(parser)
    methods = tuple(args.methods.split(","))
    report(scored_rows(args, score_seed, lambda seed, lengths: (args.folder, seed, lengths, methods)))


if __name__ == "__main__":
    main()
