"""Building blocks for vocoders: checking their inputs, cropping to the gap, constrained
Griffin-Lim, and meeting the known samples.  The built-in Griffin-Lim vocoder is made of
these; a third-party vocoder (see examples/melrestore-pghi) can reuse them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from .gaps import runs
from .mel import MelFrontend
from .splice import meet_edges


def check_vocoder_inputs(log_mel, segment, missing, frontend: MelFrontend) -> None:
    """Raise ValueError, saying what is wrong, unless the arguments fit the vocoder contract."""
    s = frontend.settings
    log_mel, segment, missing = np.asarray(log_mel), np.asarray(segment), np.asarray(missing)
    if segment.ndim != 2:
        raise ValueError(f"segment must be [channels, samples], got shape {segment.shape}")
    if missing.shape != (segment.shape[1],) or missing.dtype != bool:
        raise ValueError(f"missing must be a bool mask of shape ({segment.shape[1]},), got {missing.dtype} {missing.shape}")
    expected = (segment.shape[0], s.n_mels, s.frames_for(segment.shape[1]))
    if log_mel.shape != expected:
        raise ValueError(f"log_mel must be [channels, n_mels, frames] = {expected} for this segment, got {log_mel.shape}")
    if not np.isfinite(log_mel).all():
        raise ValueError("log_mel holds NaN or infinite values")


@dataclass
class Crop:
    """The stretch of a segment a vocoder needs to work on: the gaps plus one window each side.
    It starts on a frame boundary, so its frames are a slice of the segment's."""

    start: int
    end: int
    first_frame: int
    n_frames: int

    @classmethod
    def around(cls, missing: np.ndarray, frontend: MelFrontend) -> "Crop":
        s = frontend.settings
        idx = np.flatnonzero(missing)
        start = max(0, (idx[0] - s.n_fft) // s.hop_length) * s.hop_length
        end = min(len(missing), idx[-1] + 1 + s.n_fft)
        return cls(start, end, start // s.hop_length, s.frames_for(end - start))

    def frames(self, log_mel: np.ndarray) -> np.ndarray:
        mel = np.asarray(log_mel)[..., self.first_frame : self.first_frame + self.n_frames]
        short = self.n_frames - mel.shape[-1]
        if short > 0:  # a segment tail shorter than a hop: repeat the last frame
            mel = np.concatenate([mel, np.repeat(mel[..., -1:], short, axis=-1)], axis=-1)
        return mel


@contextlib.contextmanager
def single_thread():
    """The FFTs here are small: one thread runs them several times faster than a pool."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def target_magnitude(known: torch.Tensor, hole: torch.Tensor, log_mel, frontend: MelFrontend) -> torch.Tensor:
    """STFT magnitude to aim for: measured where frames are fully known, from the Mel window elsewhere."""
    target = frontend.stft(known).abs()
    missing_frames = torch.from_numpy(frontend.missing_frames(hole.numpy()))
    target[..., missing_frames] = frontend.magnitude(log_mel)[..., missing_frames]
    return target


def constrained_griffin_lim(known, hole, target, angles, frontend: MelFrontend, n_iter: int, momentum: float = 0.99):
    """Fast Griffin-Lim that puts the known samples back after every pass, so they pin the phase.

    ``known``: ``[channels, samples]`` with the hole zeroed; ``hole``: ``[samples]`` bool;
    ``target``: magnitudes ``[channels, freq, frames]``; ``angles``: unit phasors to start from.
    Returns the final unconstrained reconstruction.
    """
    length = known.shape[-1]
    previous = torch.zeros_like(angles)
    for _ in range(n_iter):
        x = torch.where(hole, frontend.istft(target * angles, length), known)
        rebuilt = frontend.stft(x)
        angles = rebuilt - previous * (momentum / (1 + momentum))
        angles = angles / (angles.abs() + 1e-16)
        previous = rebuilt
    return frontend.istft(target * angles, length)


def meet_known(free: np.ndarray, known: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Known samples where known; in each hole, ``free`` shifted so it meets them exactly at both ends."""
    out = np.array(known, dtype=np.float32, copy=True)
    length = free.shape[-1]
    for start, end in runs(hole):
        left = known[:, start - 1] - free[:, start - 1] if start > 0 else None
        right = known[:, end] - free[:, end] if end < length else None
        out[:, start:end] = meet_edges(free[:, start:end], left, right)
    return out
