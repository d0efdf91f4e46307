"""Autoregressive models of the waveform: fitted on known samples, run on into the unknown."""

from __future__ import annotations

import numpy as np


def ar_coefficients(pieces: list[np.ndarray], order: int) -> np.ndarray:
    """Prediction-error filter ``[1, -a1, ..., -ap]`` from the autocorrelation of the pieces
    (Yule-Walker on Hann-windowed pieces: the model is always stable)."""
    from scipy.linalg import solve_toeplitz  # scipy loads slowly: only when a gap is filled

    r = np.zeros(order + 1)
    for piece in pieces:
        if len(piece) > order:
            w = piece * np.hanning(len(piece))
            spectrum = np.fft.rfft(w, n=2 * len(w))
            r += np.fft.irfft(np.abs(spectrum) ** 2)[: order + 1]
    if r[0] <= 0:
        return np.concatenate([[1.0], np.zeros(order)])
    r[0] *= 1 + 1e-9  # a touch of white noise keeps the system well posed
    a = solve_toeplitz(r[:order], r[1 : order + 1])
    return np.concatenate([[1.0], -a])


# Below this order a model says too little about the music to continue it.
MIN_ORDER = 8


def extrapolate(history: np.ndarray, n: int, order: int, fit=ar_coefficients, offset: float = 0.0) -> np.ndarray:
    """The ``n`` samples that continue the 1-D ``history`` under its own model of at most ``order``
    (a quarter of the history at most; ``fit(pieces, order)`` makes it) of the music around its
    DC ``offset``; the offset alone when the history is too short to fit one."""
    order = min(order, len(history) // 4)
    if order < MIN_ORDER:
        return np.full(n, offset)
    history = np.asarray(history, dtype=np.float64) - offset
    predictor = -fit([history], order)[1:][::-1]  # weights of the last `order` samples, oldest first
    out = np.concatenate([history[-order:], np.zeros(n)])
    for t in range(order, order + n):  # a loop of dot products: faster than scipy.signal.lfilter here, and no import
        out[t] = predictor @ out[t - order : t]
    return offset + out[order:]
