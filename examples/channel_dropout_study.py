"""Dropouts of one channel: the prediction from the other channel against the Mel path.

Made the table under "A dropout of one channel" in the README's "How it works":

    python examples/channel_dropout_study.py ~/melrestore-data --split validation
    python examples/channel_dropout_study.py ~/melrestore-data --split train --package fretsonfire-songs-muldjord --tracks 8
    python examples/channel_dropout_study.py ~/melrestore-data --split test

Takes the stereo tracks of a split of the prepared cache (``examples/prepare_training_data.py``),
60 s from the middle of each, and punches one-channel gaps (``--gaps``, ``--per-track`` of each
length, one channel drawn at random per gap; ``--seed``).  Each gap is filled by the least-squares
filter of the other channel (``melrestore.crosschannel``, whatever its gate says) and by the Mel
pipeline alone (the default inpainter and vocoder), and scored on the dropped channel: LSD, SNR,
ViSQOL.  Prints, for the gaps the gate takes and those it turns away, the filter minus the Mel
path (mean ± standard error, paired).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from melrestore.crosschannel import MAX_CONTEXT_LSD_DB, fit_other_channels
from melrestore.evaluate import ViSQOL, punch_gaps
from melrestore.gaps import Gap
from melrestore.metrics import gap_metrics
from melrestore.pipeline import PipelineOptions, build_engine

RATE = 44100  # the cache's rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cache", type=Path, help="the prepared cache (its manifest.json and decoded/)")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--package", help="only this package's tracks")
    parser.add_argument("--tracks", type=int, help="only the first N tracks")
    parser.add_argument("--gaps", default="50,200,1000,2000", help="gap lengths, ms")
    parser.add_argument("--per-track", type=int, default=2)
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()

    tracks = [t for t in json.loads((args.cache / "manifest.json").read_text())["tracks"]
              if t["split"] == args.split and t["channels"] == 2 and t["package"] == (args.package or t["package"])]
    tracks = tracks[: args.tracks]
    mel = build_engine(PipelineOptions(short_gap_ms=0.0, long_gap_ms=0.0))
    visqol = ViSQOL()
    rng = np.random.default_rng(args.seed)
    rows = []  # (taken, filter minus Mel path: {metric: difference})
    for track in tracks:
        decoded = np.load(args.cache / track["decoded"], mmap_mode="r")
        start = max(0, decoded.shape[1] // 2 - 30 * RATE)
        clean = np.asarray(decoded[:, start : start + 60 * RATE], dtype=np.float32) / 32768
        for g in punch_gaps(clean.shape[1], RATE, [int(ms) for ms in args.gaps.split(",")] * args.per_track, rng):
            c = int(rng.integers(2))
            damaged = clean.copy()
            damaged[c, g.start : g.end] = 0.0
            fitted = fit_other_channels(damaged, Gap(g.start, g.end, "", (c,)), RATE, [])
            mel_fills, _ = mel.repair(damaged, RATE, [Gap(g.start, g.end)])
            if fitted is None or Gap(g.start, g.end) not in mel_fills:
                continue
            scores = []
            for fill in (fitted[0], mel_fills[Gap(g.start, g.end)]):
                estimate = damaged.copy()
                estimate[c, g.start : g.end] = fill[c]
                one = slice(c, c + 1)
                score = gap_metrics(clean[one], estimate[one], g.start, g.end, RATE)
                score["visqol"] = visqol(clean[one], estimate[one], g.start, g.end, RATE)
                scores.append(score)
            taken = fitted[1][0] <= MAX_CONTEXT_LSD_DB
            rows.append((taken, {k: scores[0][k] - scores[1][k] for k in ("visqol", "lsd_db", "snr_db")}))
        print(f"{track['package']}/{track['track']}: {len(rows)} gaps so far", flush=True)
    for taken in (True, False):
        chosen = [d for t, d in rows if t == taken]
        if not chosen:
            print(f"{'taken' if taken else 'turned away'}: none of {len(rows)}")
            continue
        cells = []
        for key in ("visqol", "lsd_db", "snr_db"):
            d = np.array([x[key] for x in chosen if np.isfinite(x[key])])
            cells.append(f"{key} {d.mean():+.3f} ± {d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float('nan'):.3f}")
        print(f"{'taken' if taken else 'turned away'}: {len(chosen)} of {len(rows)} gaps, filter minus Mel path: " + ", ".join(cells))


if __name__ == "__main__":
    main()
