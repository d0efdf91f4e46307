"""Retrieval for the learned inpainter (the U-Net's references) and the vocoder: the stretches of the
same recording that best match a gap's window.  (The similarity repairer's search, which copies a
stretch into the gap itself, is ``melrestore.search``.)

Music repeats.  Before inpainting, the engine (and the training sampler, the same way) looks
through the recording, within ``SEARCH_RADIUS_S`` of the window, for the windows whose *known*
frames best match the known frames around the gap, and hands the best few to the network as
extra input planes with how well each matched, and the best one, aligned to the sample, to a
vocoder that takes it.  The search runs on compact features (the log-Mel of the mono mix, pooled
to a few bands) on the recording's own frame grid, by FFT correlation, so one search costs a few
milliseconds even for a long recording.  A candidate keeps clear of the window it serves (or only of its gap
and a little more: ``min_offset``), and must be clean where the window's gap is (or nearly:
``max_dirty``); its own dropouts elsewhere only drop out of the distance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .analysis import SEARCH_RADIUS_S
from .correlate import correlate, masked_squared_distance
from .frames import LazyFrames, default_block_frames
from .mel import MelFrontend, resample

POOL_BANDS = 4  # Mel bands averaged into one search feature
QUALITY_DECAY = 2.0  # a match's quality is exp(-QUALITY_DECAY * its distance ratio)
MIN_KNOWN_FRAMES = 4  # a window with fewer known frames has nothing to match


@dataclass(frozen=True)
class Reference:
    offset: int  # analysis-rate samples from the window to the matching stretch
    ratio: float  # mean squared distance over the known frames / their own variance (0 = identical)
    dirty: float = 0.0  # share of the window's gap frames where the stretch itself touches another gap

    @property
    def quality(self) -> float:
        """What the network sees of the match: 1 identical, towards 0 unrelated (and 0 for no match);
        a ratio of 0.69 gives 0.25, the vocoder's default cut-off (``reference_min_quality``)."""
        return math.exp(-QUALITY_DECAY * self.ratio)


class RecordingFeatures:
    """Compact features of a whole recording on its analysis frame grid, for :func:`find_references`.

    ``mono_between(lo, hi)`` gives the mono mix at the analysis rate for samples ``lo:hi`` (zeros
    outside the recording), ``n_samples`` its length; ``avoid`` lists ``(start, end)`` spans
    (analysis-rate samples: other gaps) no reference may touch.  Built in blocks, where a search
    first reaches (:class:`melrestore.frames.LazyFrames`), so a long recording never holds its
    full-resolution log-Mel, or its resampled samples, at once, and a long recording with a few
    gaps analyses only what lies within the search radius of them (blocks of
    ``melrestore.audio.BLOCK_SAMPLES`` unless ``block_frames`` says otherwise).
    A search looks ``radius_s`` each way from the window.
    """

    def __init__(self, mono_between, n_samples: int, frontend: MelFrontend, avoid=(), block_frames: int | None = None,
                 radius_s: float = SEARCH_RADIUS_S):
        s = frontend.settings
        self.hop = s.hop_length
        block_frames = block_frames or default_block_frames(self.hop)
        self.radius = s.hops_in(radius_s)  # frames
        n_frames = s.frames_for(n_samples)
        pooled = s.n_mels // POOL_BANDS
        pad = s.frame_reach  # each block carries it on each side, so its frames equal a single pass's

        def block(first: int, last: int) -> np.ndarray:
            chunk = mono_between(first * self.hop - pad, (last - 1) * self.hop + pad)
            mel = frontend.log_mel(chunk[None])[0][:, pad // self.hop : pad // self.hop + last - first]
            return mel[: pooled * POOL_BANDS].reshape(pooled, POOL_BANDS, -1).mean(axis=1)

        self.features = LazyFrames(pooled, n_frames, block_frames, block)  # analysed where a search first looks
        self.bad = np.zeros(n_frames, dtype=bool)
        for start, end in avoid:  # every frame whose analysis window overlaps the span
            lo, hi = s.frames_touching(start, end)
            self.bad[max(0, lo) : hi] = True
        self.good = (~self.bad).astype(np.float64)

    @classmethod
    def of_samples(cls, mono: np.ndarray, frontend: MelFrontend, radius_s: float = SEARCH_RADIUS_S,
                   block_frames: int | None = None) -> "RecordingFeatures":
        """From a mono mix already at the analysis rate (training)."""

        def between(lo, hi):
            out = np.zeros(hi - lo, dtype=np.float32)
            a, b = max(lo, 0), min(hi, len(mono))
            if b > a:
                out[a - lo : b - lo] = mono[a:b]
            return out

        return cls(between, len(mono), frontend, block_frames=block_frames, radius_s=radius_s)

    @classmethod
    def of_recording(cls, audio: np.ndarray, sample_rate: int, frontend: MelFrontend, avoid=(),
                     block_frames: int | None = None) -> "RecordingFeatures":
        """From a file's samples ``[channels, samples]`` at its own rate, mixed and resampled block by
        block (``avoid`` in file samples)."""
        rate = frontend.settings.sample_rate
        common = math.gcd(sample_rate, rate)
        step_in, step_out = sample_rate // common, rate // common  # resampling maps step_in samples onto step_out
        margin = 64 * step_in  # enough for the resampling filter at both ends

        def between(lo, hi):
            out = np.zeros(hi - lo, dtype=np.float32)
            # File samples from a multiple of step_in, so the resampled block lands on whole output samples.
            f_lo = max(0, (lo * step_in // step_out) // step_in * step_in - margin)
            f_hi = min(audio.shape[1], -(-hi * step_in // step_out) + margin)
            if f_hi <= f_lo:
                return out
            block = resample(audio[:, f_lo:f_hi].mean(axis=0, keepdims=True), sample_rate, rate)[0]
            first = f_lo // step_in * step_out  # the block's first sample at the analysis rate
            a, b = max(lo, first), min(hi, first + len(block))
            if b > a:
                out[a - lo : b - lo] = block[a - first : b - first]
            return out

        n_samples = math.ceil(audio.shape[1] * rate / sample_rate)
        scaled = [(math.floor(start * rate / sample_rate), math.ceil(end * rate / sample_rate)) for start, end in avoid]
        return cls(between, n_samples, frontend, scaled, block_frames)

    @property
    def frames(self) -> int:
        return self.features.shape[1]

    def frame_at(self, start: int) -> int:
        """The grid frame nearest analysis-rate sample ``start``: where a window or stretch from there sits."""
        return int(round(start / self.hop))

    def dirty_frames(self, first: int, count: int) -> np.ndarray:
        """Which of the ``count`` frames from grid frame ``first`` touch another gap, or the next
        frame on either side does (a stretch cut off the grid is within half a hop of it)."""
        bad = np.zeros(count + 2, dtype=bool)
        lo, hi = max(0, first - 1), min(self.frames, first + count + 1)
        if hi > lo:
            bad[lo - (first - 1) : hi - (first - 1)] = self.bad[lo:hi]
        return bad[:-2] | bad[1:-1] | bad[2:]


def nearest_offset(window_frames: int, gap_frames: int, shortest_window: int) -> int:
    """How near (frames) a window's references may lie (``find_references``'s ``min_offset``): never
    nearer than its gap is long, nor than the inpainter's shortest window is long.  So a long gap's
    window, longer than a bar or two of music, may take the repeat a bar away; a short gap's window
    keeps clear of itself (nearer lags match the beat, not the music: worse on validation).  The
    engine and the training sampler both follow it, so the network trains on what it is given."""
    return min(window_frames, max(gap_frames, shortest_window))


def find_references(recording: RecordingFeatures, window_start: int, window_frames: int, known: np.ndarray, count: int,
                    needed: np.ndarray | None = None, max_dirty: float = 0.0, min_offset: int | None = None) -> list[Reference]:
    """The ``count`` best non-overlapping matches for a window starting at analysis-rate sample
    ``window_start`` with ``known`` ``[window_frames]`` frames (True where the frame is usable
    context).  A candidate must be clean where the window's gap is (``needed``, default every
    frame not known: that is what it offers), but for at most a ``max_dirty`` share of those
    frames; where the candidate itself touches another gap, those frames drop out of the distance
    (at least half the window's context must remain).  Candidates lie at least ``min_offset``
    frames from the window (default: its length, so they never overlap it).
    Fewer (or none) when the recording is too short or the window has no context."""
    hop, t = recording.hop, window_frames
    first = recording.frame_at(window_start)  # the window's first frame on the recording's grid
    if first < 0 or first + t > recording.frames or known.sum() < MIN_KNOWN_FRAMES:
        return []
    lo, hi = max(0, first - recording.radius), min(recording.frames, first + t + recording.radius)  # frames searched
    n_positions = hi - lo - t + 1
    min_offset = t if min_offset is None else min_offset
    if n_positions <= 2 * min_offset:
        return []
    mask = known.astype(np.float64)
    searched = recording.features.span(lo, hi)
    window = searched[:, first - lo : first - lo + t]
    pattern = window.astype(np.float64) * mask
    good = recording.good[lo:hi]
    # Masked squared distance, mean over the frames known in the window and clean in the candidate.
    compared = correlate(good, mask)
    bands = searched.shape[0]
    distance = masked_squared_distance(searched, pattern, mask, good) / (np.maximum(compared, 1) * bands)
    known_values = window[:, known]
    spread = float(np.mean((known_values - known_values.mean(axis=1, keepdims=True)) ** 2)) + 1e-6
    positions = lo + np.arange(n_positions)
    needed = ~known if needed is None else needed
    dirty_where_needed = correlate(1.0 - good, needed.astype(np.float64))
    n_needed = max(1, int(needed.sum()))
    usable = (dirty_where_needed < max_dirty * n_needed + 0.5) & (compared >= 0.5 * mask.sum()) & (np.abs(positions - first) >= min_offset)
    distance = np.where(usable, distance, np.inf)
    references = []
    for _ in range(count):
        best = int(np.argmin(distance))
        if not np.isfinite(distance[best]):
            break
        references.append(Reference((positions[best] - first) * hop, max(0.0, float(distance[best])) / spread,
                                    float(np.round(dirty_where_needed[best])) / n_needed))
        distance[max(0, best - t // 2) : best + t // 2 + 1] = np.inf  # the next one elsewhere
    return references
