"""Per-frame features of a whole recording, analysed a block of frames at a time when first read.

Both searches (``melrestore.search`` and ``melrestore.retrieval``) compare a gap's surroundings with
every stretch within ``SEARCH_RADIUS_S`` of it.  A long recording with a few dropouts needs only the
stretches within that reach of them: analysing them on demand keeps its memory and time in
proportion to the damage, not to its length.  A short recording ends up analysed whole, by the
same blocks, with the same values, as one pass over it.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Callable

import numpy as np


class LazyFrames:
    """Features ``[rows, frames]``: ``compute(first, last)`` gives those of frames ``first:last``.

    Blocks start every ``block_frames``; with ``flush_end`` the last one starts ``block_frames``
    before the end instead (overlapping the one before, whose frames there it supersedes), so every
    block is as long as the others."""

    def __init__(self, rows: int, frames: int, block_frames: int, compute: Callable[[int, int], np.ndarray],
                 flush_end: bool = False, dtype=np.float32):
        self.shape = (rows, frames)
        self.dtype = np.dtype(dtype)
        self.block_frames = block_frames
        self._compute = compute
        self._firsts = list(range(0, max(frames, 1), block_frames))
        if flush_end:
            self._firsts[-1] = max(0, frames - block_frames)
        self._blocks: dict[int, np.ndarray] = {}

    @property
    def blocks_analysed(self) -> int:
        return len(self._blocks)

    def span(self, lo: int, hi: int) -> np.ndarray:
        """Frames ``lo:hi`` (``0 <= lo <= hi <= frames``) as one array ``[rows, hi - lo]``."""
        if not 0 <= lo <= hi <= self.shape[1]:
            raise IndexError(f"frames {lo}:{hi} of {self.shape[1]}")
        out = np.empty((self.shape[0], hi - lo), dtype=self.dtype)
        frame = lo
        while frame < hi:
            i = bisect_right(self._firsts, frame) - 1
            first = self._firsts[i]
            owned_to = self._firsts[i + 1] if i + 1 < len(self._firsts) else self.shape[1]
            stop = min(hi, owned_to)
            out[:, frame - lo : stop - lo] = self._block(i)[:, frame - first : stop - first]
            frame = stop
        return out

    def _block(self, i: int) -> np.ndarray:
        if i not in self._blocks:
            first = self._firsts[i]
            self._blocks[i] = np.asarray(self._compute(first, min(self.shape[1], first + self.block_frames)), dtype=self.dtype)
        return self._blocks[i]


def squared_sum(features: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """Per frame, the sum over rows of the squared features (times ``weight`` first, if given), in
    float64, a row at a time: the frame energies the searches' FFT distances need."""
    total = np.zeros(features.shape[1])
    for row in features:
        row = row.astype(np.float64)
        total += (row if weight is None else row * weight) ** 2
    return total
