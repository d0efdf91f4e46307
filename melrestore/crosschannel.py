"""Filling a dropout of some channels from the channels that still play.

Where one channel of a stereo recording drops out, the other still carries most of the music:
each missing channel is predicted as a linear filter of the others (two-sided, ``TAPS``
samples each side), fitted by least squares on the known samples either side of the gap.
Where the channels do not share enough of the music for that, it declines and the Mel pipeline
takes the gap: the test is the fit's own log-spectral distance on the known samples beside the
gap.  (A fit can explain 95 % of a channel's energy, its loud low end, and still miss the quiet
high bands that one channel holds alone; LSD and ViSQOL hear those.)
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .gaps import Gap, mask_of
from .metrics import LSD_FFT, log_spectral_distance

TAPS = 16  # filter taps on each side of the predicted sample
CONTEXT_S = 0.5  # seconds fitted on each side of the gap
MAX_CONTEXT_LSD_DB = 8.0  # the fit's log-spectral distance beside the gap, at most
RIDGE = 1e-6  # relative to the mean energy per tap: keeps a silent or duplicate channel well posed
ROWS_PER_WEIGHT = 4  # known rows the fit needs per weight, at least


def predict_from_other_channels(audio, gap: Gap, sample_rate: int, all_gaps: list[Gap], taps: int = TAPS,
                                context_s: float = CONTEXT_S, max_context_lsd_db: float = MAX_CONTEXT_LSD_DB) -> np.ndarray | None:
    """``[channels, gap.length]``: ``gap.channels`` predicted from the other channels (the other rows
    are those channels' own samples), or None where it declines: no other channel, another gap
    in the way, too little known context, or a fit further than ``max_context_lsd_db`` from a
    channel's known samples beside the gap."""
    predicted = fit_other_channels(audio, gap, sample_rate, all_gaps, taps, context_s)
    if predicted is None or max(predicted[1]) > max_context_lsd_db:
        return None
    return predicted[0]


def fit_other_channels(audio, gap: Gap, sample_rate: int, all_gaps: list[Gap], taps: int = TAPS,
                       context_s: float = CONTEXT_S) -> tuple[np.ndarray, list[float]] | None:
    """The prediction, and for each of ``gap.channels`` the fit's log-spectral distance (dB) from its
    known samples before and after the gap (the mean of the two); None where there is nothing to fit."""
    n_channels, n = audio.shape
    if gap.channels is None:
        return None
    others = [c for c in range(n_channels) if c not in gap.channels]
    if not others:
        return None
    context = round(context_s * sample_rate)
    lo, hi = max(0, gap.start - context - taps), min(n, gap.end + context + taps)
    piece = np.asarray(audio[:, lo:hi], dtype=np.float64)
    near = [g for g in all_gaps if g != gap and g.end > lo and g.start < hi]
    unknown = mask_of([Gap(g.start - lo, g.end - lo) for g in near], hi - lo)  # other gaps: no samples to trust
    # Row t: the other channels' samples t - taps .. t + taps, for the sample t + taps of the piece.
    windows = sliding_window_view(piece[others], 2 * taps + 1, axis=1)  # a view: [others, rows, 2 * taps + 1]
    clean = ~sliding_window_view(unknown, 2 * taps + 1).any(axis=1)  # rows whose inputs are all known
    at = np.arange(taps, hi - lo - taps)  # the piece's sample of each row
    in_gap = (at >= gap.start - lo) & (at < gap.end - lo)
    fit = clean & ~in_gap & ~unknown[at]
    n_weights = len(others) * (2 * taps + 1)
    if not clean[in_gap].all() or in_gap.sum() != gap.length or fit.sum() < ROWS_PER_WEIGHT * n_weights:
        return None
    x = windows[:, fit].transpose(1, 0, 2).reshape(-1, n_weights)  # the fitted rows only: the context
    x = np.hstack([x, np.ones((len(x), 1))])  # and a constant: the channels' DC offsets may differ
    gram = x.T @ x
    # Per tap, about the taps' means: neither the constant's column nor a DC offset is music.
    energy = (np.trace(gram[:-1, :-1]) - np.sum(gram[-1, :-1] ** 2) / len(x)) / n_weights
    if not energy > 0:
        return None  # the other channels are silent there: nothing to predict from
    gram[np.diag_indices_from(gram)] += RIDGE * energy
    out = np.asarray(audio[:, gap.start : gap.end], dtype=np.float32).copy()
    distances = []
    before = (at < gap.start - lo)[fit]  # the fitted rows before the gap (the others are after it)
    inputs = piece[others, gap.start - lo - taps : gap.end - lo + taps]  # what the gap's rows read
    for c in gap.channels:
        target = piece[c, at[fit]]
        weights = np.linalg.solve(gram, x.T @ target)
        predicted = x @ weights
        sides = [side for side in (before, ~before) if side.sum() >= LSD_FFT]  # a full LSD frame; none: inf, and declined
        distances.append(float(np.mean([log_spectral_distance(target[side], predicted[side]) for side in sides])) if sides else np.inf)
        taps_of = weights[:-1].reshape(len(others), 2 * taps + 1)
        out[c] = weights[-1] + sum(np.correlate(signal, w, mode="valid") for signal, w in zip(inputs, taps_of))
    return out, distances
