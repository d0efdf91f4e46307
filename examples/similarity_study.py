"""Which features and distance find the repeat: variants of the similarity search on punched gaps.

Made the feature/distance table in the README's "Long gaps" section:

    python examples/similarity_study.py HELD_OUT_DIR --per-file 3 [--old OLD_similarity.py]

and the choice of context length in its "Half a second of context" paragraph:

    python examples/similarity_study.py VALIDATION_DIR DEVELOPMENT_DIR --gaps 200,400,1000,2000,3000 \
        --variants "context 0.5 s,context 1 s" --visqol [--seed 1]

Punches gaps into 60 s excerpts the way `melrestore evaluate` does (same seed, same places),
fills each with the best match of every variant (always accepted, copied by the plugin's
``copy_match``) and prints the mean LSD and SNR of the fill per gap length (and with ``--visqol``
its ViSQOL, first channel, as ``evaluate`` measures it), plus each variant minus the default (the
first variant named), mean ± standard error over the same gaps.  ``--old`` loads an older
``plugins/similarity.py`` (e.g. ``git show 4e76646:plugins/similarity.py``) as one more variant.
"""

from __future__ import annotations

import argparse
import importlib.util
import json

import numpy as np

from melrestore.audio import read
from melrestore.evaluate import ViSQOL, _excerpt, gap_ms, punch_gaps
from melrestore.inputs import find_audio_files
from melrestore.metrics import log_spectral_distance, snr
from melrestore.plugins.similarity import copy_match
from melrestore.search import RecordingIndex

CHROMA_BINS = 12


class SquaredDistance(RecordingIndex):
    @staticmethod
    def difference(source, target):
        return np.square(source - target).mean(axis=(-2, -1))


class Chroma(RecordingIndex):
    """Log chroma (energy per pitch class, 55 Hz to 5 kHz) instead of the full spectrum."""

    def fine_features(self, magnitude):
        freqs = np.arange(magnitude.shape[0]) * self.sample_rate / self.settings.n_fft
        used = (freqs >= 55) & (freqs <= 5000)
        pitch = np.round(12 * np.log2(freqs[used] / 440.0)).astype(int) % CHROMA_BINS
        fold = np.zeros((CHROMA_BINS, used.sum()))
        fold[pitch, np.arange(used.sum())] = 1.0
        return np.log(fold @ magnitude[used] ** 2 + 1e-6).T.astype(np.float32)


class EveryOffset(RecordingIndex):
    """The fine distance at every usable offset (the slow reference the coarse stage must not lose to)."""

    def _coarse(self, frames):
        span = len(np.arange(frames[0], frames[-1] + 1))
        positions = np.arange(len(self.bad_count) - span)
        offsets = positions - frames[0]
        return offsets[~self._bad(positions, positions + span) & (np.abs(offsets) >= span)]


def old_repairer(path):
    """The repairer of an older ``plugins/similarity.py`` (a file), always pasting its best match."""
    spec = importlib.util.spec_from_file_location("old_similarity", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    repairer = module.SimilarityRepair(max_match_ratio=np.inf)
    repairer.long_gap_max_match_ratio = np.inf  # a file with a second gate from long_gap_s: never gate either
    return repairer


def with_floor(floor: float):
    class Floor(RecordingIndex):
        # the log spectrum with another floor (the default is search.LOG_FLOOR)

        def fine_features(self, magnitude):
            return np.log(magnitude.T + floor).astype(np.float32)

    return Floor


def with_context(seconds: float):
    class Context(RecordingIndex):
        # another length of music matched each side of the gap (the default is analysis.SEARCH_CONTEXT_S)

        def __init__(self, *args, **kwargs):
            super().__init__(*args, context_s=seconds, **kwargs)

    return Context


class FrameGrid(RecordingIndex):
    """No sample-accurate re-rank: the best offset on the frame grid, then aligned."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, refine=1, **kwargs)


VARIANTS = {
    "log spectrum L1": RecordingIndex,
    "log spectrum L2": SquaredDistance,
    "chroma": Chroma,
    "frame grid only": FrameGrid,
    "every offset": EveryOffset,
    "floor 0.01": with_floor(0.01),
    "floor 0.1": with_floor(0.1),
    "floor 1": with_floor(1.0),
    **{f"context {seconds:g} s": with_context(seconds) for seconds in (0.25, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0)},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--gaps", default="200,400,1000,2000,3000")
    parser.add_argument("--per-file", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--excerpt", type=float, default=60.0)
    parser.add_argument("--old", help="an older plugins/similarity.py to compare with")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--visqol", action="store_true", help="score every fill's ViSQOL too (seconds a gap)")
    parser.add_argument("--json", help="write every gap's scores here")
    args = parser.parse_args()
    lengths = [int(g) for g in args.gaps.split(",")]
    variants = {name: VARIANTS[name] for name in args.variants.split(",")}
    old = old_repairer(args.old) if args.old else None
    rng = np.random.default_rng(args.seed)
    visqol = ViSQOL() if args.visqol else None
    rows = []
    for path in [path for folder in args.folders for path in find_audio_files(folder)]:
        audio = read(path)
        clean, rate = _excerpt(audio, args.excerpt), audio.sample_rate
        gaps = punch_gaps(clean.shape[1], rate, lengths * args.per_file, rng)
        damaged = clean.copy()
        for g in gaps:
            damaged[:, g.start : g.end] = 0.0
        indexes = {name: cls(damaged, rate) for name, cls in variants.items()}
        for g in gaps:
            fills = {}
            for name, index in indexes.items():
                try:
                    matches = index.top_matches(g.start, g.end)
                except ValueError:
                    continue
                if matches:
                    fills[name] = copy_match(damaged, g.start, g.end, matches[0], rate)
            if old is not None:
                try:
                    fills["old"] = old.repair(damaged, g.start, g.end, rate)
                except ValueError:
                    pass
            truth = clean[:, g.start : g.end].astype(np.float64)
            for name, fill in fills.items():
                row = {
                    "file": path.name, "start": g.start, "gap_ms": gap_ms(g, rate), "variant": name,
                    "lsd_db": float(np.mean([log_spectral_distance(t, f) for t, f in zip(truth, fill)])),
                    "snr_db": float(np.mean([snr(t, f) for t, f in zip(truth, fill)])),
                }
                if visqol:
                    repaired = damaged[:1].copy()
                    repaired[:, g.start : g.end] = fill[:1]
                    row["visqol"] = visqol(clean[:1], repaired, g.start, g.end, rate)
                rows.append(row)
        print(path.name, flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f)
    names = [*variants, *(["old"] if old else [])]
    default = names[0]
    for metric in ("lsd_db", "snr_db", *(["visqol"] if visqol else [])):
        print(f"\n{metric}: mean, then minus the default (mean ± standard error)")
        print(f"{'variant':<28}" + "".join(f"{str(g) + ' ms':>18}" for g in lengths))
        for name in names:
            cells = []
            for g in lengths:
                by_gap = {(r["file"], r["start"]): r[metric] for r in rows if r["gap_ms"] == g and r["variant"] == name}
                base = {(r["file"], r["start"]): r[metric] for r in rows if r["gap_ms"] == g and r["variant"] == default}
                paired = [by_gap[k] - base[k] for k in by_gap if k in base]
                if name == default or not paired:
                    cells.append(f"{np.mean(list(by_gap.values())):>18.2f}" if by_gap else f"{'-':>18}")
                else:
                    se = np.std(paired, ddof=1) / np.sqrt(len(paired)) if len(paired) > 1 else 0.0
                    cells.append(f"{np.mean(paired):>+10.2f} ± {se:<5.2f}")
            print(f"{name:<28}" + "".join(cells))


if __name__ == "__main__":
    main()
