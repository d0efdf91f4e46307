"""Similarity-based repair for long gaps (after Perraudin et al., 2018).

Music repeats.  This repairer looks through the same recording for the stretch
whose surroundings best match the gap's surroundings (log-Mel frames, one
second each side), aligns it to the sample on the waveform around the gap, and
copies it in.  It only accepts a match that is clearly closer than the music's
own variation around the gap; otherwise it declines (ValueError) and the engine
uses the Mel inpainter instead.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve

from melrestore import hookimpl
from melrestore.gaps import runs
from melrestore.mel import MelFrontend, MelSettings
from melrestore.splice import meet_edges


class SimilarityRepair:
    def __init__(self, context_s: float = 1.0, max_match_ratio: float = 0.8, align_ms: float = 50.0, n_mels: int = 64):
        self.context_s = context_s
        self.max_match_ratio = max_match_ratio
        self.align_ms = align_ms
        self.n_mels = n_mels
        self._cache: tuple | None = None

    def _features(self, audio: np.ndarray, sample_rate: int):
        """Log-Mel frames of the mono mix and which frames touch digital silence (cached per file)."""
        key = (id(audio), audio.shape, sample_rate)
        if self._cache and self._cache[0] == key:
            return self._cache[1]
        frontend = MelFrontend(MelSettings(sample_rate=sample_rate, n_mels=self.n_mels))
        mono = audio.mean(axis=0)
        features = frontend.log_mel(mono[None])[0]
        silent = np.zeros(len(mono), dtype=bool)
        for start, end in runs((audio == 0).all(axis=0)):
            if end - start >= 32:
                silent[start:end] = True
        bad = frontend.missing_frames(silent)
        self._cache = (key, (features, bad, frontend.settings.hop_length))
        return self._cache[1]

    def repair(self, audio, start, end, sample_rate):
        features, bad, hop = self._features(audio, sample_rate)
        n_frames = features.shape[1]
        context = int(round(self.context_s * sample_rate / hop))
        # Frames whose window (n_fft = 4 hops, centred) touches the gap: first..last.
        first, last = (start - 2 * hop) // hop + 1, -(-(end + 2 * hop) // hop) - 1
        left = np.arange(first - context, first)
        right = np.arange(last + 1, last + 1 + context)
        if left[0] < 0 or right[-1] >= n_frames or bad[left].any() or bad[right].any():
            raise ValueError("not enough clean context around the gap")
        frames = np.concatenate([left, right])
        offsets, distance = self._distances(features, bad, frames, first, last, context)
        if offsets.size == 0:
            raise ValueError("no other stretch of the recording to copy from")
        best = int(np.argmin(distance))
        pattern = features[:, frames]
        spread = np.mean((pattern - pattern.mean(axis=1, keepdims=True)) ** 2)
        if distance[best] > self.max_match_ratio * spread:
            raise ValueError("no stretch of the recording matches the gap's surroundings closely enough")
        shift = self._align(audio, start, end, int(offsets[best]) * hop, hop)
        # Match the loudness around the gap, then make the copy meet the real neighbours.
        n = 2048
        here = np.sqrt(np.mean(audio[:, start - n : start] ** 2) + np.mean(audio[:, end : end + n] ** 2))
        there = np.sqrt(np.mean(audio[:, start + shift - n : start + shift] ** 2) + np.mean(audio[:, end + shift : end + shift + n] ** 2))
        gain = float(np.clip(here / max(there, 1e-9), 0.5, 2.0))
        source = gain * audio[:, start + shift : end + shift].astype(np.float32)
        left = audio[:, start - 1] - gain * audio[:, start + shift - 1]
        right = audio[:, end] - gain * audio[:, end + shift]
        return meet_edges(source, left, right)

    def _distances(self, features, bad, frames, first, last, context):
        """Mean squared log-Mel distance between the gap's context and the same pattern at every
        usable offset (via FFT correlation), with offsets that reach silence or the gap removed."""
        n_bands, n_frames = features.shape
        span = np.arange(frames[0], frames[-1] + 1)
        mask = np.isin(span, frames).astype(np.float64)
        pattern = features[:, span] * mask
        energy = np.sum(pattern**2)
        # For each position p (the pattern's first frame moved to p): sum of mask * F[:, p + i]^2 and the cross term.
        sq = fftconvolve(np.sum(features**2, axis=0), mask[::-1], mode="valid")
        cross = sum(fftconvolve(features[b], pattern[b][::-1], mode="valid") for b in range(n_bands))
        distance = (energy + sq - 2 * cross) / (mask.sum() * n_bands)
        positions = np.arange(len(distance))
        offsets = positions - span[0]
        # The copied stretch (context + gap) must be clean and must not overlap the gap's own stretch.
        bad_count = np.concatenate([[0], np.cumsum(bad)])
        length = len(span)
        usable = (bad_count[positions + length] - bad_count[positions] == 0) & (np.abs(offsets) >= length)
        return offsets[usable], distance[usable]

    def _align(self, audio, start, end, shift, hop) -> int:
        """Refine a frame-accurate shift to the sample by cross-correlating the waveform either side."""
        n = 2048
        lo, hi = shift - hop, shift + hop
        if start + lo - n < 0 or end + hi + n > audio.shape[1]:
            return shift
        score = np.zeros(hi - lo + 1)
        for edge in (slice(start - n, start), slice(end, end + n)):
            for channel in audio:
                reference = channel[edge]
                window = channel[edge.start + lo : edge.stop + hi]
                score += np.correlate(window, reference, mode="valid")
        return lo + int(np.argmax(score))


@hookimpl
def register_sample_repairers(register):
    register("similarity", SimilarityRepair)
