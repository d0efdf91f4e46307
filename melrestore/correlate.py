"""Sliding dot products of feature bands, the core of both searches (``search`` and ``retrieval``)."""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve

BANDS_PER_CALL = 16  # bands transformed together: fewer calls, and bounded memory on long recordings


def correlate(signal: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``signal`` ``[..., n]`` against ``kernel`` ``[..., m]`` at every offset where it fits whole:
    ``out[..., p] = sum_j signal[..., p + j] * kernel[..., j]`` (``[..., n - m + 1]``)."""
    return fftconvolve(signal, kernel[..., ::-1], mode="valid", axes=-1)


def correlate_bands(bands: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """The sum over bands of each band of ``bands`` ``[bands, n]`` correlated with its row of
    ``kernels`` ``[bands, m]``, in float64 (the same sum, bit for bit, as one band at a time)."""
    total = 0.0
    for first in range(0, len(bands), BANDS_PER_CALL):
        rows = correlate(bands[first : first + BANDS_PER_CALL].astype(np.float64), kernels[first : first + BANDS_PER_CALL])
        for row in rows:
            total = total + row
    return total
