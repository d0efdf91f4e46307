"""Quality measures for a filled gap, computed against the original samples inside the gap."""

from __future__ import annotations

import functools

import numpy as np

from .mel import MelFrontend, MelSettings

EPS = 1e-10
# The longest FFT frame the spectral measures take (shorter gaps get shorter ones).
LSD_FFT = 2048


def _spectra(x: np.ndarray, n_fft: int) -> np.ndarray:
    """Power spectra of Hann-windowed frames (hop n_fft/4) of a 1-D signal.  A signal shorter than
    ``n_fft`` (a gap under 32 samples) is one frame, Hann-windowed over its own length and zero-padded."""
    if len(x) < n_fft:
        # The window one sample wider each side, so that no sample weighs zero (all of a 2-sample gap would).
        return np.abs(np.fft.rfft(x * np.hanning(len(x) + 2)[1:-1], n_fft))[None] ** 2
    hop = n_fft // 4
    n_frames = 1 + (len(x) - n_fft) // hop
    frames = np.stack([x[i * hop : i * hop + n_fft] for i in range(n_frames)])
    return np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)) ** 2


def gap_fft_size(n_samples: int, largest: int = LSD_FFT) -> int:
    """The largest power of two up to ``largest`` that fits in the gap (at least 32: a shorter gap is
    one frame, zero-padded to 32)."""
    return int(max(32, min(largest, 2 ** int(np.floor(np.log2(max(n_samples, 32)))))))


def log_spectral_distance(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Mean over frames of the RMS difference of the power spectra in dB (1-D signals)."""
    n_fft = gap_fft_size(len(reference))
    ref, est = _spectra(reference, n_fft), _spectra(estimate, n_fft)
    diff = 10 * np.log10(ref + EPS) - 10 * np.log10(est + EPS)
    return float(np.mean(np.sqrt(np.mean(diff**2, axis=1))))


def spectral_convergence(reference: np.ndarray, estimate: np.ndarray) -> float:
    n_fft = gap_fft_size(len(reference))
    ref, est = np.sqrt(_spectra(reference, n_fft)), np.sqrt(_spectra(estimate, n_fft))
    return float(np.linalg.norm(ref - est) / max(np.linalg.norm(ref), EPS))


def snr(reference: np.ndarray, estimate: np.ndarray) -> float:
    return float(10 * np.log10(max(np.sum(reference**2), EPS) / max(np.sum((reference - estimate) ** 2), EPS)))


@functools.lru_cache(maxsize=4)
def _frontend(sample_rate: int) -> MelFrontend:
    return MelFrontend(MelSettings(sample_rate=sample_rate))


def log_mel_l1(reference: np.ndarray, estimate: np.ndarray, start: int, end: int, sample_rate: int) -> float:
    """Mean |log-Mel difference| over the frames that overlap the gap (whole-file 1-D signals),
    analysed from two FFT lengths each side of it (every frame that overlaps it, whole)."""
    frontend = _frontend(sample_rate)
    n_fft = frontend.settings.n_fft
    lo, hi = max(0, start - 2 * n_fft), min(len(reference), end + 2 * n_fft)
    lo -= lo % frontend.settings.hop_length
    missing = np.zeros(hi - lo, dtype=bool)
    missing[start - lo : end - lo] = True
    frames = frontend.missing_frames(missing)
    ref = frontend.log_mel(reference[None, lo:hi])[0]
    est = frontend.log_mel(estimate[None, lo:hi])[0]
    return float(np.mean(np.abs(ref - est)[:, frames]))


def gap_metrics(reference: np.ndarray, estimate: np.ndarray, start: int, end: int, sample_rate: int) -> dict:
    """All measures for one gap, per channel then averaged.  ``reference``/``estimate`` are whole
    ``[channels, samples]`` files; only ``start:end`` is compared (log-Mel: frames touching it)."""
    rows = []
    for ref, est in zip(reference.astype(np.float64), estimate.astype(np.float64)):
        r, e = ref[start:end], est[start:end]
        rows.append(
            {
                "lsd_db": log_spectral_distance(r, e),
                "snr_db": snr(r, e),
                "log_mel_l1": log_mel_l1(ref, est, start, end, sample_rate),
                "spectral_convergence": spectral_convergence(r, e),
            }
        )
    return {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}
