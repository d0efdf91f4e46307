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

from . import audio as audio_io


class LazyFrames:
    """Features ``[rows, frames]``: ``compute(first, last)`` gives those of frames ``first:last``.

    Blocks start every ``block_frames``; with ``flush_end`` the last one starts ``block_frames``
    before the end instead (overlapping the one before, whose frames there it supersedes), so every
    block is as long as the others.  The values live in one array for the whole recording whose
    pages the system commits only when a block is written into them: memory for what was analysed,
    in one piece (blocks kept apart would pin the heap between the analyses' temporaries)."""

    def __init__(self, rows: int, frames: int, block_frames: int, compute: Callable[[int, int], np.ndarray],
                 flush_end: bool = False, dtype=np.float32):
        self.block_frames = block_frames
        self._compute = compute
        self._firsts = list(range(0, max(frames, 1), block_frames))
        if flush_end:
            self._firsts[-1] = max(0, frames - block_frames)
        self._values = np.zeros((rows, frames), dtype=dtype)  # zeroed pages, committed when first written
        self._analysed = np.zeros(len(self._firsts), dtype=bool)

    @property
    def shape(self) -> tuple[int, int]:
        return self._values.shape

    @property
    def blocks_analysed(self) -> int:
        return int(self._analysed.sum())

    def span(self, lo: int, hi: int) -> np.ndarray:
        """Frames ``lo:hi`` (``0 <= lo <= hi <= frames``), a read-only view ``[rows, hi - lo]``."""
        frames = self.shape[1]
        if not 0 <= lo <= hi <= frames:
            raise IndexError(f"frames {lo}:{hi} of {frames}")
        if hi > lo:
            for i in range(bisect_right(self._firsts, lo) - 1, bisect_right(self._firsts, hi - 1)):
                if not self._analysed[i]:
                    first = self._firsts[i]
                    owned_to = self._firsts[i + 1] if i + 1 < len(self._firsts) else frames  # frames no later block supersedes
                    values = self._compute(first, min(frames, first + self.block_frames))
                    self._values[:, first:owned_to] = values[:, : owned_to - first]
                    self._analysed[i] = True
        view = self._values[:, lo:hi]
        view.flags.writeable = False
        return view


def default_block_frames(hop_length: int) -> int:
    """The searches' block (frames of ``hop_length``) unless told otherwise: the frames in a block of
    samples read at a time (``melrestore.audio.BLOCK_SAMPLES``), at least one."""
    return max(1, audio_io.BLOCK_SAMPLES // hop_length)
