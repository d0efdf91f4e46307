"""Similarity-based repair for long gaps (after Perraudin et al., 2018).

Music repeats.  This repairer looks through the same recording for the stretch whose surroundings
best match the gap's surroundings (``melrestore.search``), matches its loudness and copies it in.
It only accepts a match that is clearly closer than the music's own variation around the gap
(the match's ``ratio``): the learned inpainter's own fill, which already draws on the recording's
repeats, is hard to beat.  The limit may differ below and from ``long_gap_s``; both are 0.8,
calibrated by ViSQOL, LSD and SNR on the validation split from 30 ms (the engine hands it gaps
from 30 ms on) to 3 s (see the README).  Otherwise it declines (ValueError) and the engine uses
the Mel inpainter instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from melrestore import hookimpl
from melrestore.analysis import SEARCH_CONTEXT_S
from melrestore.splice import meet_edges, offset_around

if TYPE_CHECKING:
    from melrestore.search import Match, RecordingIndex


class SimilarityRepair:
    def __init__(self, context_s: float = SEARCH_CONTEXT_S, max_match_ratio: float = 0.8, long_gap_s: float = 1.0,
                 long_gap_max_match_ratio: float = 0.8, candidates: int = 16):
        self.context_s = context_s
        self.max_match_ratio = max_match_ratio  # for gaps shorter than long_gap_s
        self.long_gap_s = long_gap_s
        self.long_gap_max_match_ratio = long_gap_max_match_ratio
        self.candidates = candidates
        self._index: RecordingIndex | None = None

    def index(self, audio: np.ndarray, sample_rate: int) -> RecordingIndex:
        """The search index of this recording, built once while gaps of the same recording come in."""
        from melrestore.search import RecordingIndex  # loads torch: not while the plugins are listed

        if self._index is None or not self._index.holds(audio, sample_rate):
            self._index = RecordingIndex(audio, sample_rate, context_s=self.context_s, candidates=self.candidates)
        return self._index

    def repair(self, audio, start, end, sample_rate):
        matches = self.index(audio, sample_rate).top_matches(start, end, k=1)
        if not matches:
            raise ValueError("no other stretch of the recording to copy from")
        if matches[0].ratio > self.limit(end - start, sample_rate):
            raise ValueError("no stretch of the recording matches the gap's surroundings closely enough")
        return copy_match(audio, start, end, matches[0], sample_rate)

    def limit(self, gap_samples: int, sample_rate: int) -> float:
        """The largest match ratio the gate accepts for a gap this long."""
        return self.long_gap_max_match_ratio if gap_samples >= self.long_gap_s * sample_rate else self.max_match_ratio


def copy_match(audio: np.ndarray, start: int, end: int, match: Match, sample_rate: int, level_samples: int = 2048) -> np.ndarray:
    """The matched stretch for ``start:end``, scaled to the loudness around the gap (within a factor
    of two) and made to meet the known neighbours without a jump.  The music is scaled around the
    DC offset around the gap (``splice.offset_around``): a gain other than 1 moves no offset, and
    an exact repeat is copied as it is, whatever the offsets."""
    shift = match.shift_samples
    n = level_samples
    offset = offset_around(audio, start, end, sample_rate)[:, None]

    def level(lo: int, hi: int) -> float:
        return np.sqrt(np.mean((audio[:, max(0, lo - n) : lo] - offset) ** 2) + np.mean((audio[:, hi : hi + n] - offset) ** 2))

    gain = float(np.clip(level(start, end) / max(level(start + shift, end + shift), 1e-9), 0.5, 2.0))
    scaled = lambda lo, hi: offset + gain * (audio[:, lo:hi] - offset)  # noqa: E731  (the source's samples lo:hi)
    source = scaled(start + shift, end + shift).astype(np.float32)
    left = audio[:, start - 1] - scaled(start + shift - 1, start + shift)[:, 0]
    right = audio[:, end] - scaled(end + shift, end + shift + 1)[:, 0]
    return meet_edges(source, left, right)


@hookimpl
def register_sample_repairers(register):
    register("similarity", SimilarityRepair)
