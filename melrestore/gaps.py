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


def merge_gaps(gaps: list[Gap]) -> list[Gap]:
    """Sort gaps and merge them so that no sample of any channel lies in two, joining their reasons.

    Gaps of the same channels that overlap or touch become one.  Where gaps of different channels
    overlap (a label over a channel's dropout, two channels' dropouts that overlap in time), the
    overlap is one gap of every channel either names, and the rest of each stays a gap of its own
    channels only: a channel's samples beside its own dropout are never replaced.  Side by side,
    gaps of different channels stay apart."""
    ordered = sorted((g for g in gaps if g.end > g.start), key=lambda g: (g.start, g.end))
    bounds = sorted({edge for g in ordered for edge in (g.start, g.end)})
    pieces: list[Gap] = []
    active: list[Gap] = []  # the gaps over the current stretch
    following = 0  # the first of ``ordered`` not yet active
    for lo, hi in zip(bounds, bounds[1:]):
        while following < len(ordered) and ordered[following].start <= lo:
            active.append(ordered[following])
            following += 1
        active = [g for g in active if g.end > lo]
        if not active:
            continue
        channels = None if any(g.channels is None for g in active) else tuple(sorted({c for g in active for c in g.channels}))
        piece = Gap(lo, hi, _joined(g.reason for g in active), channels)
        last = pieces[-1] if pieces else None
        if last is not None and last.end == lo and last.channels == channels:
            piece = Gap(last.start, hi, _joined([last.reason, piece.reason]), channels)
            pieces.pop()
        pieces.append(piece)
    return pieces


def _joined(reasons) -> str:
    """Reasons (each perhaps already ``"a; b"``) joined once each, in order."""
    return "; ".join(dict.fromkeys(r for reason in reasons for r in reason.split("; ") if r))


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


def row_runs_in_blocks(audio, rows_of, block_samples: int, min_length: int = 1):
    """The runs of several masks of ``audio`` without holding it whole: ``audio`` (``[channels,
    samples]``, an array or anything sliced like one) is read ``block_samples`` at a time,
    ``rows_of`` maps a block to ``[rows, samples]`` bool masks, and a run that reaches a block's end
    is carried into the next.  Yields ``(row, start, end)``, each row's runs in order.  Runs shorter than
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
