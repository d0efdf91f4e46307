"""The Mel front end: waveform -> log-Mel window, and log-Mel -> linear STFT magnitude."""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torchaudio

from .analysis import MIN_CONTEXT_FRAMES, NNLS_ITERATIONS, MelSettings, window_for_gap  # noqa: F401 (re-exported)


# Frames per STFT call when a long signal's magnitude is wanted (measured on one core: 128 to 512
# frames are equally fast, 2048 twice as slow).
STFT_BLOCK_FRAMES = 256


class MelFrontend:
    """Log-Mel analysis (torchaudio) plus the approximate inverse a vocoder needs.

    Mel bands are of the STFT *magnitude* (power 1), area-normalised (slaney),
    and logged as ``ln(mel + log_floor)``.
    """

    def __init__(self, settings: MelSettings):
        self.settings = settings
        s = settings
        self.window = torch.hann_window(s.n_fft)
        self.to_mel = torchaudio.transforms.MelScale(
            n_mels=s.n_mels,
            sample_rate=s.sample_rate,
            f_min=s.f_min,
            f_max=s.f_max,
            n_stft=s.n_fft // 2 + 1,
            norm="slaney",
            mel_scale=s.mel_scale,
        )
        fb = self.to_mel.fb  # [freq, mels]
        # Starting point of the inverse: each band's mean magnitude, spread back over the bins it
        # covers in proportion to the filter weights (non-negative, stable).
        band_area = fb.sum(dim=0).clamp(min=1e-12)
        weights = fb / fb.sum(dim=1, keepdim=True).clamp(min=1e-12)
        # Sparse: each band covers a few bins, so products with these are cheap.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            self._from_mel = (weights / band_area).to_sparse_csr()  # [freq, mels]
            self._fb_sparse = fb.to_sparse_csr()
            self._fb_t_sparse = fb.T.contiguous().to_sparse_csr()

    def stft(self, audio: torch.Tensor, center: bool = True) -> torch.Tensor:
        """``[..., samples]`` -> complex ``[..., freq, frames]``; frames centred on every hop
        (``center``, the ends padded), or else only the whole frames inside ``audio``."""
        s = self.settings
        shape = audio.shape
        spec = torch.stft(
            audio.reshape(-1, shape[-1]),
            n_fft=s.n_fft,
            hop_length=s.hop_length,
            window=self.window,
            center=center,
            pad_mode="reflect" if shape[-1] > s.n_fft // 2 else "constant",
            return_complex=True,
        )
        return spec.reshape(*shape[:-1], *spec.shape[-2:])

    def stft_magnitude(self, audio: torch.Tensor) -> torch.Tensor:
        """``[..., samples]`` -> ``|STFT|`` ``[..., freq, frames]`` (numpy's complex absolute value:
        many times faster than torch's on the CPU).  A long signal goes ``STFT_BLOCK_FRAMES`` frames
        at a time: the same values, two to three times faster than one call, whose complex
        spectrum of thousands of frames does not fit in the CPU's cache."""
        s = self.settings
        n_frames = s.frames_for(audio.shape[-1])
        if n_frames <= STFT_BLOCK_FRAMES:
            return torch.from_numpy(np.abs(self.stft(audio).numpy()))
        flat = audio.reshape(-1, 1, audio.shape[-1])
        padded = torch.nn.functional.pad(flat, (s.n_fft // 2, s.n_fft // 2), mode="reflect")[:, 0]  # as center=True pads
        out = np.empty((len(flat), n_frames, s.n_fft // 2 + 1), dtype=np.float32)  # torch.stft's own layout
        for first in range(0, n_frames, STFT_BLOCK_FRAMES):
            count = min(STFT_BLOCK_FRAMES, n_frames - first)
            piece = padded[:, first * s.hop_length : (first + count - 1) * s.hop_length + s.n_fft]
            np.abs(self.stft(piece, center=False).numpy().transpose(0, 2, 1), out=out[:, first : first + count])
        return torch.from_numpy(out).transpose(1, 2).reshape(*audio.shape[:-1], *out.shape[:0:-1])

    def istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        s = self.settings
        shape = spec.shape
        audio = torch.istft(
            spec.reshape(-1, *shape[-2:]),
            n_fft=s.n_fft,
            hop_length=s.hop_length,
            window=self.window,
            center=True,
            length=length,
        )
        return audio.reshape(*shape[:-2], length)

    def log_mel_from_magnitude(self, magnitude: torch.Tensor) -> torch.Tensor:
        """``[..., freq, frames]`` -> ``[..., n_mels, frames]``, through the sparse filterbank (each
        band covers a few bins: several times faster than the dense product)."""
        columns = magnitude.movedim(-2, 0).reshape(magnitude.shape[-2], -1)
        mel = torch.sparse.mm(self._fb_t_sparse, columns)
        mel = mel.reshape(mel.shape[0], *magnitude.shape[:-2], magnitude.shape[-1]).movedim(0, -2)
        return torch.log(mel + self.settings.log_floor)

    def log_mel(self, audio: np.ndarray | torch.Tensor) -> np.ndarray:
        """``[channels, samples]`` -> ``[channels, n_mels, frames]`` float32."""
        audio = torch.as_tensor(np.asarray(audio, dtype=np.float32))
        with torch.no_grad():
            return self.log_mel_from_magnitude(self.stft_magnitude(audio)).numpy()

    def magnitude(self, log_mel: np.ndarray | torch.Tensor, iterations: int = NNLS_ITERATIONS,
                  start: torch.Tensor | None = None) -> torch.Tensor:
        """Linear STFT magnitude ``[..., freq, frames]`` from a log-Mel window: the non-negative
        least-squares inverse of the filterbank, by multiplicative updates (Lee and Seung) started
        from ``start`` (``[..., freq, frames]``, positive where a bin may sound) or else from the even
        spread of each band over its bins.  Where bands are narrower than a few bins (low
        frequencies) this recovers the peaks the spread blurs; where they are wider, it keeps the
        fine structure of ``start`` and scales it to the bands."""
        return self.mel_fitter(log_mel)(start, iterations)

    def mel_fitter(self, log_mel: np.ndarray | torch.Tensor):
        """What :meth:`magnitude` does, with the log-Mel window's part prepared once:
        ``fit(start, iterations)`` -> the magnitude after ``iterations`` updates from ``start``
        (``[..., freq, frames]``; None: the even spread).  Griffin-Lim refits every pass with it."""
        mel = (torch.exp(torch.as_tensor(log_mel, dtype=torch.float32)) - self.settings.log_floor).clamp(min=0)
        columns = mel.movedim(-2, 0)  # [mels, ..., frames]
        outer = columns.shape[1:]
        columns = columns.reshape(columns.shape[0], -1)
        aimed = torch.sparse.mm(self._fb_sparse, columns)

        def fit(start: torch.Tensor | None, iterations: int) -> torch.Tensor:
            if start is None:
                magnitude = torch.sparse.mm(self._from_mel, columns)
            else:
                magnitude = start.movedim(-2, 0).reshape(start.shape[-2], -1)
            for _ in range(iterations):
                modelled = torch.sparse.mm(self._fb_sparse, torch.sparse.mm(self._fb_t_sparse, magnitude))
                magnitude = magnitude * aimed / modelled.clamp(min=1e-12)
            return magnitude.reshape(-1, *outer).movedim(0, -2)

        return fit

    def analyse_with_gap(self, audio: np.ndarray, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The window as the engine hands it to an inpainter: ``audio`` ``[batch, samples]`` with the
        ``missing`` samples (``[samples]``, or ``[batch, samples]``) zeroed, analysed ->
        (log-Mel ``[batch, n_mels, frames]``, missing frames ``[batch, frames]``)."""
        damaged = np.where(missing, 0.0, audio).astype(np.float32)
        if missing.ndim == 1:
            frames = np.repeat(self.missing_frames(missing)[None], len(audio), axis=0)
        else:
            frames = np.stack([self.missing_frames(m) for m in missing])
        return self.log_mel(damaged), frames

    def missing_frames(self, missing: np.ndarray) -> np.ndarray:
        """Frames whose analysis window overlaps any missing sample. ``[samples]`` -> ``[frames]``."""
        s = self.settings
        n_frames = s.frames_for(len(missing))
        counts = np.concatenate([[0], np.cumsum(missing)])
        centres = np.arange(n_frames) * s.hop_length
        lo = np.clip(centres - s.n_fft // 2, 0, len(missing))
        hi = np.clip(centres + s.n_fft // 2, 0, len(missing))
        return counts[hi] > counts[lo]


def resample(audio: np.ndarray, orig: int, new: int) -> np.ndarray:
    """``[channels, samples]`` float32 from rate ``orig`` to ``new`` (torchaudio's windowed sinc)."""
    if orig == new:
        return np.array(audio, dtype=np.float32, copy=True)
    with torch.no_grad():
        return torchaudio.functional.resample(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)), orig, new).numpy()
