"""Finding where a recording repeats the music around a gap, for the similarity repairer
(``plugins/similarity.py``, the long-gap sample repairer), which copies the best stretch into the
gap.  (The stretches the U-Net and the vocoder are handed come from ``melrestore.retrieval``.)

A :class:`RecordingIndex` holds one recording's features, built once.  ``top_matches(start, end, k)``
looks for other stretches whose surroundings (``context_s`` each side of the gap) match the gap's
own, coarse to fine:

1. coarse: mean squared difference of compact log-Mel features at every frame offset, all at once
   by FFT correlation; the ``candidates`` best local minima go on;
2. fine: mean absolute difference of the full-resolution log spectrum (every STFT bin) at those
   offsets and one frame either side; both sides of the gap weigh the same;
3. waveform: the best ``refine`` are aligned to the sample by normalised cross-correlation of the
   samples next to the gap, on both sides, and ranked again by the fine distance at that exact
   shift (on the frame grid, a repeat that falls between two frames can look worse than a
   stretch that does not repeat at all).

Features and distances were chosen by measurement on held-out music (see the README).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from scipy.fft import rfft

from .gaps import every_channel_row, row_runs_in_blocks, silent_rows
from .analysis import SEARCH_CONTEXT_S, SEARCH_RADIUS_S
from .correlate import align_shift, masked_squared_distance
from .frames import LazyFrames, default_block_frames
from .mel import MelFrontend, MelSettings

SILENT_RUN = 32  # samples of digital zero that count as missing (another gap) rather than music
LOG_FLOOR = 1e-4  # added to STFT magnitudes before the log, so near-silent bins do not dominate


@dataclass(frozen=True)
class Match:
    """A stretch to copy: the gap ``start:end`` gets ``audio[:, start + shift_samples : end + shift_samples]``."""

    shift_samples: int
    distance: float  # mean |log-spectrum difference| over the context on both sides (nats)
    ratio: float  # distance / the context's own variation about its mean spectrum: lower is closer


class RecordingIndex:
    """One recording's features for the search (``audio`` ``[channels, samples]``, gaps zeroed).

    ``audio`` is an array or a file read on demand (:class:`melrestore.audio.Waveform`): the
    compact features are built ``block_frames`` at a time where a search first reaches
    (:class:`melrestore.frames.LazyFrames`), and the full-resolution spectrum only where it looks,
    so a long recording is never held whole."""

    def __init__(self, audio, sample_rate: int, context_s: float = SEARCH_CONTEXT_S, n_fft: int = 2048,
                 hop_length: int = 512, compact_bands: int = 64, candidates: int = 16, refine: int = 8, align_samples: int = 1024,
                 block_frames: int | None = None, radius_s: float = SEARCH_RADIUS_S):
        # An array gets its own copy, so holds() compares contents; a file read on demand cannot change.
        self.audio = np.array(audio, dtype=np.float32) if isinstance(audio, np.ndarray) else audio
        self._mono = _MonoBlocks(self.audio)
        self.sample_rate = sample_rate
        self.settings = MelSettings(sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=compact_bands)
        self.context = self.settings.hops_in(context_s)  # frames
        self.radius = self.settings.hops_in(radius_s)
        self.candidates = candidates
        self.refine = refine
        self.align_samples = align_samples
        self.n_samples = audio.shape[1]
        self.frontend = MelFrontend(self.settings)
        self.window = self.frontend.window.numpy()
        n_frames = self.settings.frames_for(self.n_samples)
        block_frames = block_frames or default_block_frames(hop_length)
        # The compact log-Mel [bands, frames], analysed where a search first looks.  The last block
        # as long as the others, overlapping the one before: the Mel projection (a matrix product) of
        # a handful of frames can round differently from a long block's.
        self.compact = LazyFrames(compact_bands, n_frames, block_frames, self._compact_block, flush_end=True)
        bad = np.zeros(n_frames, dtype=bool)
        every_row = every_channel_row(audio.shape[0])
        for row, lo, hi in row_runs_in_blocks(self.audio, silent_rows, block_frames * hop_length, SILENT_RUN):
            # Digital silence, or a dropout of one channel; not a channel silent up to the file's
            # end (a dead channel: the others still hold music to copy).
            dead_channel = row != every_row and (lo == 0 or hi == self.n_samples)
            if hi - lo >= SILENT_RUN and not dead_channel:
                first, stop = self.settings.frames_touching(lo, hi)
                bad[max(0, first) : stop] = True
        self.bad_count = np.concatenate([[0], np.cumsum(bad)])

    def _compact_block(self, first: int, last: int) -> np.ndarray:
        with torch.no_grad():
            magnitude = torch.from_numpy(self._magnitudes([first], last - first)[0])
            return self.frontend.log_mel_from_magnitude(magnitude).numpy()

    def _magnitudes(self, firsts, count: int) -> np.ndarray:
        """STFT magnitudes ``[len(firsts), bins, count]`` of frames ``first:first + count`` for each of
        ``firsts``, the same as one pass over the whole recording gives: each stretch carries the
        samples its frames' windows reach, and at the recording's ends its own ends, so the same
        reflection pads them.  The stretches clear of the ends go through one STFT call together."""
        s = self.settings
        hop, reach = s.hop_length, s.frame_reach
        out = np.empty((len(firsts), count, s.n_fft // 2 + 1), dtype=np.float32).transpose(0, 2, 1)  # stft_magnitude's layout
        inner = [i for i, first in enumerate(firsts) if first * hop >= reach and (first + count - 1) * hop + reach <= self.n_samples]
        for group in [[i] for i in range(len(firsts)) if i not in inner] + ([inner] if inner else []):
            spans = [(max(0, firsts[i] * hop - reach), min(self.n_samples, (firsts[i] + count - 1) * hop + reach)) for i in group]
            mono = np.stack([self._mono(lo, hi) for lo, hi in spans])  # a group's stretches are equally long
            skip = (firsts[group[0]] * hop - spans[0][0]) // hop
            with torch.no_grad():
                out[group] = self.frontend.stft_magnitude(torch.from_numpy(mono))[:, :, skip : skip + count].numpy()
        return out

    def fine_features(self, magnitude: np.ndarray) -> np.ndarray:
        """``[bins, frames]`` STFT magnitude -> ``[frames, features]`` for the fine stage."""
        return np.log(magnitude.T + LOG_FLOOR).astype(np.float32, copy=False)

    def _fine_table(self, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The fine features of the frames in ``wanted`` (any shape): those frames, sorted and once
        each, and their features ``[frames, features]``.  Each run of consecutive frames is analysed
        once, all runs in one STFT call."""
        needed = np.unique(wanted)
        breaks = np.diff(needed) > 1
        firsts, lasts = needed[np.r_[True, breaks]], needed[np.r_[breaks, True]]
        count = int((lasts - firsts).max()) + 1
        firsts = np.minimum(firsts, self.compact.shape[1] - count)  # each run as long as the longest, inside the recording
        table = None
        for first, magnitude in zip(firsts, self._magnitudes(firsts.tolist(), count)):
            features = self.fine_features(magnitude)
            if table is None:
                table = np.empty((len(needed), features.shape[1]), dtype=features.dtype)
            here = (needed >= first) & (needed < first + count)
            table[here] = features[needed[here] - first]
        return needed, table

    @staticmethod
    def difference(source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Fine distance: mean absolute difference over the last two axes (frames, features)."""
        difference = source - target
        return np.abs(difference, out=difference).mean(axis=(-2, -1))  # one temporary, not two

    def holds(self, audio, sample_rate: int) -> bool:
        """Whether this index was built from exactly this recording (the same contents of an array,
        the same file read on demand: held here, so no other object can take its id)."""
        if sample_rate != self.sample_rate or audio.shape != self.audio.shape:
            return False
        if isinstance(self.audio, np.ndarray):
            return isinstance(audio, np.ndarray) and np.array_equal(audio, self.audio)
        return audio is self.audio

    def context_frames(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """The frames just before and just after the frames whose windows touch ``start:end``."""
        first, stop = self.settings.frames_touching(start, end)
        return np.arange(first - self.context, first), np.arange(stop, stop + self.context)

    def top_matches(self, start: int, end: int, k: int = 1) -> list[Match]:
        """The ``k`` best stretches to copy into ``start:end``, closest first.

        Raises ValueError when the gap lacks clean context on either side; returns an empty list
        when no other stretch of the recording is long and clean enough.
        """
        left, right = self.context_frames(start, end)
        if left[0] < 0 or right[-1] >= len(self.bad_count) - 1 or self._bad(left[0], left[-1] + 1) or self._bad(right[0], right[-1] + 1):
            raise ValueError("not enough clean context around the gap")
        frames = np.concatenate([left, right])
        offsets = self._coarse(frames)
        if offsets.size == 0:
            return []
        needed, table = self._fine_table(frames)
        target = table[np.searchsorted(needed, frames)]
        distance, spread = self._fine(frames, target, offsets)
        hop = self.settings.hop_length
        best = _distinct(offsets, distance, 3, max(k, self.refine))
        shifts = np.array([self._align(start, end, int(offsets[i]) * hop) for i in best])
        exact = np.array([self._distance_at(frames, target, int(shift)) for shift in shifts])
        return [Match(int(shifts[i]), float(exact[i]), float(exact[i] / spread))
                for i in _distinct(shifts, exact, hop, k) if np.isfinite(exact[i])]

    def _bad(self, lo, hi):
        """Whether any frame in ``lo:hi`` (scalars or arrays) touches digital silence."""
        return self.bad_count[hi] - self.bad_count[lo] > 0

    def _coarse(self, frames: np.ndarray) -> np.ndarray:
        """Frame offsets worth a closer look: the best local minima of the compact distance, each with
        its neighbours, among offsets whose whole stretch is clean and clear of the gap's own, and
        within the search radius."""
        span = np.arange(frames[0], frames[-1] + 1)
        mask = np.isin(span, frames).astype(np.float64)
        lo, hi = max(0, span[0] - self.radius), min(self.compact.shape[1], span[-1] + 1 + self.radius)
        searched = self.compact.span(lo, hi)
        pattern = searched[:, span - lo].astype(np.float64) * mask
        # Squared distance with the pattern's first frame moved to each position p, by correlation.
        distance = masked_squared_distance(searched, pattern, mask)
        positions = lo + np.arange(len(distance))
        offsets = positions - span[0]
        usable = ~self._bad(positions, positions + len(span)) & (np.abs(offsets) >= len(span))
        distance[~usable] = np.inf
        padded = np.concatenate([[np.inf], distance, [np.inf]])
        minima = np.flatnonzero((distance <= padded[:-2]) & (distance <= padded[2:]) & usable)
        best = minima[np.argsort(distance[minima], kind="stable")[: self.candidates]]
        near = np.unique(np.clip((best[:, None] + np.arange(-1, 2)).ravel(), 0, len(distance) - 1))
        return offsets[near[usable[near]]]

    def _fine(self, frames: np.ndarray, target: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, float]:
        """The fine distance from ``target`` (the features of ``frames``) at each frame offset, and
        the context's own spread about its mean."""
        distance = np.empty(len(offsets))
        for i in range(0, len(offsets), 16):  # in blocks (neighbouring offsets share most frames), to bound memory
            moved = frames[None] + offsets[i : i + 16, None]
            needed, table = self._fine_table(moved)
            distance[i : i + 16] = self.difference(table[np.searchsorted(needed, moved)], target)
        spread = float(self.difference(target, target.mean(axis=0)))
        return distance, max(spread, 1e-9)

    def _distance_at(self, frames: np.ndarray, target: np.ndarray, shift: int) -> float:
        """The fine distance from ``target`` with the context moved by exactly ``shift`` samples (inf off the recording)."""
        s = self.settings
        source = []
        for side in (frames[: self.context], frames[self.context :]):
            lo = side[0] * s.hop_length + shift - s.n_fft // 2
            hi = side[-1] * s.hop_length + shift + s.n_fft // 2
            if lo < 0 or hi > self.n_samples:
                return float("inf")
            frames_here = sliding_window_view(self._mono(lo, hi), s.n_fft)[:: s.hop_length] * self.window
            source.append(self.fine_features(np.abs(rfft(frames_here, axis=1)).T))
        return float(self.difference(np.concatenate(source), target))

    def _align(self, start: int, end: int, shift: int) -> int:
        """Refine a frame-accurate ``shift`` to the sample, within one hop."""
        return align_shift(self._mono, self.n_samples, start, end, shift, self.settings.hop_length, self.align_samples)


class _MonoBlocks:
    """The mono mix of ``audio`` (``[channels, samples]``, an array or a file read on demand) for
    ``lo:hi``, read a block at a time and keeping the latest ``max_blocks`` blocks: a search's many
    small reads near each other then cost one read per block, in bounded memory."""

    def __init__(self, audio, block_samples: int = 1 << 16, max_blocks: int = 128):
        self.audio, self.block_samples, self.max_blocks = audio, block_samples, max_blocks
        self.blocks: OrderedDict[int, np.ndarray] = OrderedDict()

    def __call__(self, lo: int, hi: int) -> np.ndarray:
        size = self.block_samples
        first = lo // size
        parts = [self._block(i) for i in range(first, max(first, (hi - 1) // size) + 1)]
        return np.concatenate(parts)[lo - first * size : hi - first * size]

    def _block(self, i: int) -> np.ndarray:
        if i in self.blocks:
            self.blocks.move_to_end(i)
        else:
            self.blocks[i] = self.audio[:, i * self.block_samples : (i + 1) * self.block_samples].mean(axis=0)
            if len(self.blocks) > self.max_blocks:
                self.blocks.popitem(last=False)
        return self.blocks[i]


def _distinct(positions: np.ndarray, distance: np.ndarray, min_apart: int, limit: int) -> list[int]:
    """Indices of up to ``limit`` positions, closest first, each at least ``min_apart`` from the
    ones before it (so the candidates are different stretches, not one stretch moved a little)."""
    chosen: list[int] = []
    for i in np.argsort(distance, kind="stable"):
        if len(chosen) == limit:
            break
        if all(abs(int(positions[i]) - int(positions[j])) >= min_apart for j in chosen):
            chosen.append(int(i))
    return chosen
