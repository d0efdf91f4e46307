"""Finding where a recording repeats the music around a gap.

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

from dataclasses import dataclass

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from scipy.fft import rfft
from scipy.signal import correlate, fftconvolve

from .gaps import runs
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
    """One recording's features for the search (``audio`` ``[channels, samples]``, gaps zeroed)."""

    def __init__(self, audio: np.ndarray, sample_rate: int, context_s: float = 1.0, n_fft: int = 2048,
                 hop_length: int = 512, compact_bands: int = 64, candidates: int = 16, refine: int = 8, align_samples: int = 1024):
        self.audio = np.array(audio, dtype=np.float32)  # its own copy, so holds() compares contents
        self.sample_rate = sample_rate
        self.settings = MelSettings(sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=compact_bands)
        self.context = max(1, int(round(context_s * sample_rate / hop_length)))
        self.candidates = candidates
        self.refine = refine
        self.align_samples = align_samples
        self.mono = self.audio.mean(axis=0)
        frontend = MelFrontend(self.settings)
        self.window = frontend.window.numpy()
        with torch.no_grad():
            magnitude = frontend.stft(torch.from_numpy(self.mono)).abs()
            self.compact = frontend.log_mel_from_magnitude(magnitude).numpy().astype(np.float64)  # [bands, frames]
        self.fine = self.fine_features(magnitude.numpy())  # [frames, features]
        self.compact_energy = np.sum(self.compact**2, axis=0)
        silent = np.zeros(len(self.mono), dtype=bool)
        for lo, hi in runs((self.audio == 0).all(axis=0)):
            if hi - lo >= SILENT_RUN:
                silent[lo:hi] = True
        self.bad_count = np.concatenate([[0], np.cumsum(frontend.missing_frames(silent))])

    def fine_features(self, magnitude: np.ndarray) -> np.ndarray:
        """``[bins, frames]`` STFT magnitude -> ``[frames, features]`` for the fine stage."""
        return np.log(magnitude.T + LOG_FLOOR).astype(np.float32)

    @staticmethod
    def difference(source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Fine distance: mean absolute difference over the last two axes (frames, features)."""
        return np.abs(source - target).mean(axis=(-2, -1))

    def holds(self, audio: np.ndarray, sample_rate: int) -> bool:
        """Whether this index was built from exactly this recording."""
        return sample_rate == self.sample_rate and audio.shape == self.audio.shape and np.array_equal(audio, self.audio)

    def context_frames(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """The frames just before and just after the frames whose windows touch ``start:end``."""
        s = self.settings
        first = (start - s.n_fft // 2) // s.hop_length + 1
        last = -(-(end + s.n_fft // 2) // s.hop_length) - 1
        return np.arange(first - self.context, first), np.arange(last + 1, last + 1 + self.context)

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
        distance, spread = self._fine(frames, offsets)
        hop = self.settings.hop_length
        best = _distinct(offsets, distance, 3, max(k, self.refine))
        shifts = np.array([self._align(start, end, int(offsets[i]) * hop) for i in best])
        exact = np.array([self._distance_at(frames, int(shift)) for shift in shifts])
        return [Match(int(shifts[i]), float(exact[i]), float(exact[i] / spread))
                for i in _distinct(shifts, exact, hop, k) if np.isfinite(exact[i])]

    def _bad(self, lo, hi):
        """Whether any frame in ``lo:hi`` (scalars or arrays) touches digital silence."""
        return self.bad_count[hi] - self.bad_count[lo] > 0

    def _coarse(self, frames: np.ndarray) -> np.ndarray:
        """Frame offsets worth a closer look: the best local minima of the compact distance, each with
        its neighbours, among offsets whose whole stretch is clean and clear of the gap's own."""
        span = np.arange(frames[0], frames[-1] + 1)
        mask = np.isin(span, frames).astype(np.float64)
        pattern = self.compact[:, span] * mask
        # Squared distance with the pattern's first frame moved to each position p, by correlation.
        sq = fftconvolve(self.compact_energy, mask[::-1], mode="valid")
        cross = fftconvolve(self.compact, pattern[:, ::-1], mode="valid", axes=1).sum(axis=0)
        distance = np.sum(pattern**2) + sq - 2 * cross
        positions = np.arange(len(distance))
        offsets = positions - span[0]
        usable = ~self._bad(positions, positions + len(span)) & (np.abs(offsets) >= len(span))
        distance[~usable] = np.inf
        padded = np.concatenate([[np.inf], distance, [np.inf]])
        minima = np.flatnonzero((distance <= padded[:-2]) & (distance <= padded[2:]) & usable)
        best = minima[np.argsort(distance[minima], kind="stable")[: self.candidates]]
        near = np.unique(np.clip((best[:, None] + np.arange(-1, 2)).ravel(), 0, len(distance) - 1))
        return offsets[near[usable[near]]]

    def _fine(self, frames: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, float]:
        """The fine distance at each frame offset, and the context's own spread about its mean."""
        target = self.fine[frames]
        distance = np.empty(len(offsets))
        for i in range(0, len(offsets), 16):  # in blocks, to bound memory on long recordings
            chunk = offsets[i : i + 16]
            distance[i : i + 16] = self.difference(self.fine[frames[None] + chunk[:, None]], target)
        spread = float(self.difference(target, target.mean(axis=0)))
        return distance, max(spread, 1e-9)

    def _distance_at(self, frames: np.ndarray, shift: int) -> float:
        """The fine distance with the context moved by exactly ``shift`` samples (inf off the recording)."""
        s = self.settings
        source = []
        for side in (frames[: self.context], frames[self.context :]):
            lo = side[0] * s.hop_length + shift - s.n_fft // 2
            hi = side[-1] * s.hop_length + shift + s.n_fft // 2
            if lo < 0 or hi > len(self.mono):
                return float("inf")
            frames_here = sliding_window_view(self.mono[lo:hi], s.n_fft)[:: s.hop_length] * self.window
            source.append(self.fine_features(np.abs(rfft(frames_here, axis=1)).T))
        return float(self.difference(np.concatenate(source), self.fine[frames]))

    def _align(self, start: int, end: int, shift: int) -> int:
        """Refine a frame-accurate ``shift`` to the sample: the lag within one hop that maximises the
        normalised cross-correlation of the ``align_samples`` either side of the gap."""
        n, hop, x = self.align_samples, self.settings.hop_length, self.mono
        lo = max(-hop, n - start - shift)
        hi = min(hop, len(x) - end - n - shift)
        if lo > hi:
            return shift
        score = np.zeros(hi - lo + 1)
        for edge in (start - n, end):
            reference = x[edge : edge + n].astype(np.float64)
            window = x[edge + shift + lo : edge + shift + hi + n].astype(np.float64)
            energy = np.concatenate([[0.0], np.cumsum(window**2)])
            norms = np.sqrt(np.maximum(energy[n:] - energy[:-n], 0.0) * np.sum(reference**2)) + 1e-12
            score += correlate(window, reference, mode="valid") / norms
        return shift + lo + int(np.argmax(score))


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
