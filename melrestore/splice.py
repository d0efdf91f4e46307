"""Making a fill meet the known samples on both sides without a jump."""

from __future__ import annotations

import numpy as np


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


def extrapolated_edges(fill: np.ndarray, before: np.ndarray, after: np.ndarray, edge: int, order: int) -> np.ndarray:
    """``fill`` (``[channels, n]``) whose first and last ``edge`` samples fade (cosine-squared) from
    the music's own continuation: an autoregressive model of ``order`` fitted on the known samples
    ``before`` the gap and run forward, and one fitted on those ``after`` it and run backward (each
    ``[channels, k]``, the known run next to the gap; none at a file's end).  Near its edges the
    fill then carries on the waveform itself, which a vocoder's fill does not.  At most half the
    fill is faded from each side."""
    from .autoregressive import extrapolate

    out = np.array(fill, dtype=np.float32, copy=True)
    edge = min(edge, out.shape[1] // 2)
    if edge == 0:
        return out
    weight = (np.cos(0.5 * np.pi * (np.arange(edge) + 0.5) / edge) ** 2).astype(np.float32)  # 1 at the known side
    for c in range(out.shape[0]):
        if before.shape[1]:
            out[c, :edge] += weight * (extrapolate(before[c], edge, order) - out[c, :edge])
        if after.shape[1]:
            backward = extrapolate(after[c, ::-1], edge, order)[::-1]
            out[c, -edge:] += weight[::-1] * (backward - out[c, -edge:])
    return out
