"""Gaps (spans of missing samples) and helpers shared by detectors and the engine."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class DetectionError(Exception):
    """A detector could not read what it was pointed at (for example a malformed label file)."""


@dataclass(frozen=True)
class Gap:
    """Samples ``start:end`` of a file (half-open, at the file's own rate) are missing, in every
    channel or (``channels``, 0-based) only in those."""

    start: int
    end: int
    reason: str = ""
    channels: tuple[int, ...] | None = None  # None: every channel

    @property
    def length(self) -> int:
        return self.end - self.start

    def seconds(self, sample_rate: int) -> tuple[float, float]:
        return self.start / sample_rate, self.end / sample_rate


def merge_gaps(gaps: list[Gap]) -> list[Gap]:
    """Sort gaps and merge those of the same channels that overlap or touch, joining their reasons.
    Gaps of different channels merge only if they overlap (a label over a channel's dropout, say),
    into one gap over both spans in every channel either names; side by side they stay apart, so
    a channel's samples beside its own dropout are not replaced."""
    merged: list[Gap] = []
    for gap in sorted(gaps, key=lambda g: (g.start, g.end)):
        last = merged[-1] if merged else None
        if last is not None and (gap.start < last.end or (gap.start == last.end and gap.channels == last.channels)):
            reasons = last.reason if gap.reason in last.reason.split("; ") else f"{last.reason}; {gap.reason}"
            channels = None if None in (last.channels, gap.channels) else tuple(sorted({*last.channels, *gap.channels}))
            merged[-1] = Gap(last.start, max(last.end, gap.end), reasons, channels)
        else:
            merged.append(gap)
    return merged


def runs(mask: np.ndarray, min_length: int = 1) -> list[tuple[int, int]]:
    """Half-open ``(start, end)`` spans where a 1-D bool mask is True (at least ``min_length`` long,
    or touching an end of the mask)."""
    mask = np.asarray(mask, dtype=bool)
    if not len(mask):
        return []
    changes = np.flatnonzero(mask[1:] != mask[:-1]) + 1  # one pass over the mask (no padded copies)
    edges = np.concatenate([[0] if mask[0] else [], changes, [len(mask)] if mask[-1] else []]).astype(np.int64)
    starts, ends = edges[::2], edges[1::2]
    if min_length > 1:
        keep = (ends - starts >= min_length) | (starts == 0) | (ends == len(mask))
        starts, ends = starts[keep], ends[keep]
    return list(zip(starts.tolist(), ends.tolist()))


def silent_rows(block: np.ndarray, tolerance: float = 0.0) -> np.ndarray:
    """``[channels, samples]`` -> ``[rows, samples]``: where each channel is silent (within
    ``tolerance`` of zero), then, last, where every channel is (mono: the one row is both)."""
    silent = block == 0 if tolerance == 0 else np.abs(block) <= tolerance
    return silent if len(silent) == 1 else np.concatenate([silent, silent.all(axis=0)[None]])


def every_channel_row(channels: int) -> int:
    """The row of ``silent_rows`` that is silent in every channel."""
    return channels if channels > 1 else 0


def mask_of(gaps: list[Gap], n_samples: int) -> np.ndarray:
    mask = np.zeros(n_samples, dtype=bool)
    for gap in gaps:
        mask[max(gap.start, 0) : min(gap.end, n_samples)] = True
    return mask


def runs_in_blocks(audio, is_set, block_samples: int):
    """``runs(is_set(audio))`` without holding ``audio`` whole: ``audio`` (``[channels, samples]``, an
    array or anything sliced like one) is read ``block_samples`` at a time, ``is_set`` maps a block to
    its ``[samples]`` bool mask, and a run that reaches a block's end is carried into the next."""
    for _, start, end in row_runs_in_blocks(audio, lambda block: is_set(block)[None], block_samples):
        yield start, end


def row_runs_in_blocks(audio, rows_of, block_samples: int, min_length: int = 1):
    """The same for several masks in one reading: ``rows_of`` maps a block to ``[rows, samples]``
    bool masks; yields ``(row, start, end)``, each row's runs in order.  Runs shorter than
    ``min_length`` may be left out (those inside a block are: a channel's zero crossings are many)."""
    n = audio.shape[1]
    carried: dict[int, tuple[int, int]] = {}  # by row: a run that reached the end of the last block
    for lo in range(0, n, block_samples):
        masks = rows_of(audio[:, lo : lo + block_samples])
        hi = lo + masks.shape[1]
        for row, mask in enumerate(masks):
            for start, end in runs(mask, min_length):
                start, end = start + lo, end + lo
                if row in carried and carried[row][1] == start:
                    start = carried.pop(row)[0]  # the run goes on across the edge
                if row in carried:
                    yield (row, *carried.pop(row))
                if end == hi:
                    carried[row] = (start, end)
                else:
                    yield row, start, end
            if row in carried and carried[row][1] < hi:
                yield (row, *carried.pop(row))
    for row in sorted(carried):
        yield (row, *carried[row])
