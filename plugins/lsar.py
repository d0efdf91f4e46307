"""Least-squares autoregressive interpolation (LSAR, after Janssen, Veldhuis and Vries, 1986).

Fits an autoregressive model to the known samples on both sides of the gap and
chooses the missing samples that minimise the model's prediction error over the
whole stretch.  For short gaps (clicks, dropouts of a few milliseconds) this
recovers the waveform itself, phase included, which no spectrogram method can.
"""

from __future__ import annotations

import numpy as np

from melrestore import hookimpl
from melrestore.autoregressive import MIN_ORDER, ar_coefficients
from melrestore.splice import offset_around

BANDED_FROM = 4096  # gap length (samples) above which the banded solver takes over


class LSAR:
    def __init__(self, max_order: int = 400, context: int = 4096, iterations: int = 2, long_order: int = 64):
        self.max_order = max_order
        self.context = context
        self.iterations = iterations
        self.long_order = long_order  # order for gaps over BANDED_FROM samples, where cost grows as n * order^2

    def repair(self, audio, start, end, sample_rate):
        """``audio`` is ``[channels, samples]`` with ``start:end`` missing; returns ``[channels, end - start]``."""
        n = end - start
        max_order = self.max_order if n <= BANDED_FROM else self.long_order
        # Three times the gap's length (the usual rule for LSAR), at least 16, and no more than the
        # music there is on either side; the model is fitted on three orders' worth of samples at least.
        order = int(min(max_order, max(16, 3 * n), start, audio.shape[1] - end))
        if order < MIN_ORDER:
            raise ValueError("too little audio around the gap for an autoregressive model")
        context = max(self.context, 3 * order)
        lo, hi = max(0, start - context), min(audio.shape[1], end + context)
        out = np.empty((audio.shape[0], n), dtype=np.float32)
        offsets = offset_around(audio, start, end, sample_rate)  # the model is of the music around it
        for c, channel in enumerate(np.asarray(audio[:, lo:hi], dtype=np.float64)):
            out[c] = offsets[c] + _interpolate(channel - offsets[c], start - lo, end - lo, order, self.iterations)
        return out


def _interpolate(x: np.ndarray, start: int, end: int, order: int, iterations: int) -> np.ndarray:
    from scipy.linalg import solve_toeplitz, solveh_banded

    n = end - start
    x = x.copy()
    x[start:end] = 0.0
    for iteration in range(iterations):
        # First from the known sides alone, then from the whole stretch with the gap filled.
        h = ar_coefficients([x[:start], x[end:]] if iteration == 0 else [x], order)
        local = x[start - order : end + order].copy()
        local[order : order + n] = 0.0
        # Minimise ||h * local||^2 over the missing samples: a symmetric Toeplitz system
        # whose first column is h's autocorrelation.
        residual = np.convolve(local, h, mode="valid")
        rhs = -np.correlate(residual, h, mode="valid")
        autocorr = np.correlate(h, h, mode="full")[order:]
        if n <= BANDED_FROM:
            column = np.zeros(n)
            column[: min(n, order + 1)] = autocorr[: min(n, order + 1)]
            x[start:end] = solve_toeplitz(column, rhs)
        else:  # the system is banded (width = order): O(n * order^2) instead of O(n^2)
            bands = np.zeros((order + 1, n))
            for lag in range(order + 1):
                bands[order - lag, lag:] = autocorr[lag]
            x[start:end] = solveh_banded(bands, rhs)
    return x[start:end]


@hookimpl
def register_sample_repairers(register):
    register("lsar", LSAR)
