"""Making a fill meet the known samples on both sides, and the fill of a gap it touches, without a jump, around the music's DC offset."""

from __future__ import annotations

import numpy as np

from .autoregressive import extrapolate
from .gaps import Gap


# A DC offset around a gap is the mean of this much audio on each side: a shorter span's mean is
# the bass as much as the offset.
OFFSET_SPAN_S = 1.0


def dc_offset(samples: np.ndarray, known: np.ndarray | None = None) -> np.ndarray:
    """Each channel's DC offset in ``samples`` (``[channels, n]``): the mean of its ``known`` samples
    (``[n]`` bool; all when None), float32 ``[channels]``; 0 where there are none.  Music centres on
    it; a Mel fill, which carries no DC, and the waveform models are made around it."""
    if known is not None:
        samples = samples[:, known]
    if not samples.shape[1]:
        return np.zeros(samples.shape[0], dtype=np.float32)
    return samples.mean(axis=1, dtype=np.float64).astype(np.float32)


def offset_around(audio, start: int, end: int, sample_rate: int) -> np.ndarray:
    """Each channel's DC offset around ``start:end`` of ``audio`` (``[channels, samples]``):
    ``dc_offset`` of ``OFFSET_SPAN_S`` of samples on each side, those zero in every channel (other
    dropouts) left out."""
    around = round(OFFSET_SPAN_S * sample_rate)
    sides = np.concatenate([audio[:, max(0, start - around) : start], audio[:, end : end + around]], axis=1)
    return dc_offset(sides, (sides != 0).any(axis=0))


def meet_edges(fill: np.ndarray, left_error, right_error, max_ramp: int = 1024) -> np.ndarray:
    """Add raised-cosine ramps to ``fill`` (``[channels, n]``) that cancel ``left_error`` at its first
    sample and ``right_error`` at its last, fading out over ``min(n, max_ramp)`` samples.

    ``left_error`` is (known sample before the gap) - (the fill's own estimate of that sample),
    likewise on the right; pass None for a side with no known neighbour.
    """
    out = np.array(fill, dtype=np.float32, copy=True)
    n = out.shape[-1]
    ramp_len = min(n, max_ramp)
    if ramp_len == 0:
        return out
    ramp = (0.5 * (1 + np.cos(np.pi * np.arange(ramp_len) / ramp_len))).astype(np.float32)
    if left_error is not None:
        out[:, :ramp_len] += np.asarray(left_error, dtype=np.float32)[:, None] * ramp
    if right_error is not None:
        out[:, n - ramp_len :] += np.asarray(right_error, dtype=np.float32)[:, None] * ramp[::-1]
    return out


def continue_known(fill: np.ndarray, before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """``fill`` (``[channels, n]``) shifted by ``meet_edges`` so that its first and last samples
    continue the known samples next to the gap, whatever the fill does at its own edges.

    ``before``: the known samples just before the gap (``[channels, k]``, the last two or fewer,
    none at the file's start); ``after``: those just after (the first two or fewer).  With two
    known samples a side, the fill's edge sample is pinned to their straight-line continuation,
    so the splice steps no more than the music did just before it; with one, to that sample.
    """
    return meet_edges(fill, edge_error(before[:, ::-1], fill[:, 0]), edge_error(after, fill[:, -1]))


def edge_error(known: np.ndarray, edge: np.ndarray) -> np.ndarray | None:
    """What ``meet_edges`` cancels at a fill's ``edge`` sample (``[channels]``): the straight-line
    continuation of the two ``known`` samples beside it (``[channels, k]``, nearest first), or the
    one, less ``edge``; None with none."""
    if known.shape[1] == 0:
        return None
    expected = 2 * known[:, 0] - known[:, 1] if known.shape[1] >= 2 else known[:, 0]
    return expected - edge


def meet_at_seams(audio, gaps: list[Gap], fills: dict[Gap, np.ndarray]) -> dict[Gap, np.ndarray]:
    """``fills`` with those of gaps that touch (one ends where the next starts) joined at their seam.

    A fill's edge at a seam has no known neighbour in its window (the other gap is missing there),
    so ``continue_known`` left it loose.  In each of its channels the neighbour is now either the
    other gap's fill, where both take that channel (each is shifted by half the error against the
    other's continuation: they meet in the middle), or the file's own samples, where only this gap
    takes it (pinned to them as ``continue_known`` does).  A channel whose neighbouring gap has no
    fill (skipped or failed) is left as it is.  ``gaps`` as ``merge_gaps`` leaves them: apart in time."""
    n = audio.shape[0]
    errors: dict[Gap, np.ndarray] = {}  # by gap: [2, channels], the error at its first sample and at its last

    def error(g: Gap) -> np.ndarray:
        return errors.setdefault(g, np.zeros((2, n), dtype=np.float32))

    ordered = sorted(gaps, key=lambda g: g.start)
    for first, then in zip(ordered, ordered[1:]):
        if first.end != then.start:
            continue
        seam, a, b = first.end, fills.get(first), fills.get(then)
        in_first = range(n) if first.channels is None else first.channels
        in_then = range(n) if then.channels is None else then.channels
        before = np.asarray(audio[:, max(seam - 2, first.start) : seam], dtype=np.float32)[:, ::-1]  # nearest first
        after = np.asarray(audio[:, seam : min(seam + 2, then.end)], dtype=np.float32)
        for c in set(in_first) | set(in_then):
            if c not in in_then:  # the file's own samples follow the first fill
                if a is not None:
                    error(first)[1, c] = edge_error(after[c : c + 1], a[c, -1:])[0]
            elif c not in in_first:  # they precede the second
                if b is not None:
                    error(then)[0, c] = edge_error(before[c : c + 1], b[c, :1])[0]
            elif a is not None and b is not None:  # both fill it: meet in the middle
                error(first)[1, c] = 0.5 * edge_error(b[c : c + 1, :2], a[c, -1:])[0]
                error(then)[0, c] = 0.5 * edge_error(a[c : c + 1, :-3:-1], b[c, :1])[0]
    return {g: meet_edges(fill, *errors[g]) if g in errors else fill for g, fill in fills.items()}


def extrapolated_edges(fill: np.ndarray, before: np.ndarray, after: np.ndarray, edge: int, order: int,
                       offset: np.ndarray | None = None) -> np.ndarray:
    """``fill`` (``[channels, n]``) whose first and last ``edge`` samples fade (cosine-squared) from
    the music's own continuation: an autoregressive model of ``order`` fitted on the known samples
    ``before`` the gap and run forward, and one fitted on those ``after`` it and run backward (each
    ``[channels, k]``, the known run next to the gap; none at a file's end).  Near its edges the
    fill then carries on the waveform itself, which a vocoder's fill does not.  At most half the
    fill is faded from each side.  ``offset`` (``[channels]``): each channel's DC offset, which the
    models continue around (none: 0)."""
    out = np.array(fill, dtype=np.float32, copy=True)
    edge = min(edge, out.shape[1] // 2)
    if edge == 0:
        return out
    weight = (np.cos(0.5 * np.pi * (np.arange(edge) + 0.5) / edge) ** 2).astype(np.float32)  # 1 at the known side
    offset = np.zeros(out.shape[0]) if offset is None else offset
    for c in range(out.shape[0]):
        if before.shape[1]:
            out[c, :edge] += weight * (extrapolate(before[c], edge, order, offset=offset[c]) - out[c, :edge])
        if after.shape[1]:
            backward = extrapolate(after[c, ::-1], edge, order, offset=offset[c])[::-1]
            out[c, -edge:] += weight[::-1] * (backward - out[c, -edge:])
    return out
