"""Sliding dot products: of feature bands, the core of both searches (``search`` and ``retrieval``:
``masked_squared_distance``), and of samples, which aligns a match to the sample."""

from __future__ import annotations

import numpy as np
from scipy.fft import irfft, next_fast_len, rfft  # not scipy.signal: it takes half a second to import

BANDS_PER_CALL = 16  # bands transformed together: fewer calls, and bounded memory on long recordings


def correlate(signal: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``signal`` ``[..., n]`` against ``kernel`` ``[..., m]`` at every offset where it fits whole:
    ``out[..., p] = sum_j signal[..., p + j] * kernel[..., j]`` (``[..., n - m + 1]``), by FFT: the
    same values as ``scipy.signal.fftconvolve(signal, kernel[..., ::-1], "valid", axes=-1)``."""
    n, m = signal.shape[-1], kernel.shape[-1]
    size = next_fast_len(n + m - 1, real=True)
    product = rfft(signal, size, axis=-1) * rfft(kernel[..., ::-1], size, axis=-1)
    return irfft(product, size, axis=-1)[..., m - 1 : n]


def correlate_bands(bands: np.ndarray, kernels: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """The sum over bands of each band of ``bands`` ``[bands, n]`` (times ``weights`` ``[n]``, if
    given) correlated with its row of ``kernels`` ``[bands, m]``, in float64 (the same sum, bit for
    bit, as one band at a time).  Only ``BANDS_PER_CALL`` bands are converted at once."""
    total = 0.0
    for first in range(0, len(bands), BANDS_PER_CALL):
        group = bands[first : first + BANDS_PER_CALL].astype(np.float64)
        if weights is not None:
            group *= weights
        rows = correlate(group, kernels[first : first + BANDS_PER_CALL])
        for row in rows:
            total = total + row
    return total


def squared_sum(features: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """Per frame, the sum over rows of the squared features (times ``weight`` first, if given), in
    float64, a row at a time: the frame energies the searches' FFT distances need."""
    total = np.zeros(features.shape[1])
    for row in features:
        row = row.astype(np.float64)
        total += (row if weight is None else row * weight) ** 2
    return total


def masked_squared_distance(searched: np.ndarray, pattern: np.ndarray, mask: np.ndarray,
                            clean: np.ndarray | None = None) -> np.ndarray:
    """The squared distance from ``pattern`` ``[bands, m]`` (float64, already times ``mask``) to the
    stretch of ``searched`` ``[bands, n]`` at each position where it fits whole (``[n - m + 1]``),
    summed over the bands and over the frames where ``mask`` ``[m]`` is 1, by FFT correlation
    (the pattern's energy + the stretch's - twice their product).  With ``clean`` ``[n]`` (1 or 0
    per searched frame), a stretch's frames that are not clean drop out of the sum as well."""
    if clean is None:
        own = np.sum(pattern**2)
    else:
        own = correlate(clean, np.sum(pattern**2, axis=0))
    theirs = correlate(squared_sum(searched, clean), mask)  # the stretches' energy, 0 where they are not clean
    cross = correlate_bands(searched, pattern, clean)
    return own + theirs - 2 * cross


def align_shift(mono, n_samples: int, start: int, end: int, shift: int, max_lag: int, n: int) -> int:
    """Refine ``shift`` (the stretch ``start + shift : end + shift`` is to stand in for the gap
    ``start:end``) to the sample: the lag within ``max_lag`` of it that maximises the normalised
    cross-correlation of the ``n`` samples either side of the gap (fewer near the recording's ends)
    with the samples beside the stretch.  ``mono(lo, hi)`` gives the recording's mono mix,
    ``n_samples`` long."""
    n = min(n, start, n_samples - end)
    if n < 1:
        return shift
    lo = max(-max_lag, n - start - shift)
    hi = min(max_lag, n_samples - end - n - shift)
    if lo > hi:
        return shift
    score = np.zeros(hi - lo + 1)
    for edge in (start - n, end):
        reference = mono(edge, edge + n).astype(np.float64)
        window = mono(edge + shift + lo, edge + shift + hi + n).astype(np.float64)
        energy = np.concatenate([[0.0], np.cumsum(window**2)])
        norms = np.sqrt(np.maximum(energy[n:] - energy[:-n], 0.0) * np.sum(reference**2)) + 1e-12
        score += correlate(window, reference) / norms
    return shift + lo + int(np.argmax(score))
