"""Gaps (spans of missing samples) and helpers shared by detectors and the engine."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class DetectionError(Exception):
    """A detector could not read what it was pointed at (for example a malformed label file)."""


@dataclass(frozen=True)
class Gap:
    """Samples ``start:end`` of a file (half-open, at the file's own rate) are missing."""

    start: int
    end: int
    reason: str = ""

    @property
    def length(self) -> int:
        return self.end - self.start

    def seconds(self, sample_rate: int) -> tuple[float, float]:
        return self.start / sample_rate, self.end / sample_rate


def merge_gaps(gaps: list[Gap]) -> list[Gap]:
    """Sort gaps and merge those that overlap or touch, joining their reasons."""
    merged: list[Gap] = []
    for gap in sorted(gaps, key=lambda g: (g.start, g.end)):
        if merged and gap.start <= merged[-1].end:
            last = merged[-1]
            reasons = last.reason if gap.reason in last.reason.split("; ") else f"{last.reason}; {gap.reason}"
            merged[-1] = Gap(last.start, max(last.end, gap.end), reasons)
        else:
            merged.append(gap)
    return merged


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open ``(start, end)`` spans where a 1-D bool mask is True."""
    padded = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def mask_of(gaps: list[Gap], n_samples: int) -> np.ndarray:
    mask = np.zeros(n_samples, dtype=bool)
    for gap in gaps:
        mask[max(gap.start, 0) : min(gap.end, n_samples)] = True
    return mask


def runs_in_blocks(audio, is_set, block_samples: int):
    """``runs(is_set(audio))`` without holding ``audio`` whole: ``audio`` (``[channels, samples]``, an
    array or anything sliced like one) is read ``block_samples`` at a time, ``is_set`` maps a block to
    its ``[samples]`` bool mask, and a run that reaches a block's end is carried into the next."""
    n = audio.shape[1]
    carried = None  # a run that reached the end of the last block
    for lo in range(0, n, block_samples):
        mask = is_set(audio[:, lo : lo + block_samples])
        hi = lo + len(mask)
        for start, end in runs(mask):
            start, end = start + lo, end + lo
            if carried is not None and carried[1] == start:
                start, carried = carried[0], None  # the run goes on across the edge
            if carried is not None:
                yield carried
                carried = None
            if end == hi:
                carried = (start, end)
            else:
                yield start, end
        if carried is not None and carried[1] < hi:
            yield carried
            carried = None
    if carried is not None:
        yield carried
