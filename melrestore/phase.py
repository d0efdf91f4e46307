"""Building blocks for vocoders: input checks, cropping to the gap, constrained Griffin-Lim, meeting the known samples.

The built-in Griffin-Lim vocoder is made of these; a third-party vocoder (see
examples/melrestore-pghi) can reuse them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from .analysis import CROP_CONTEXT_FFTS, NNLS_ITERATIONS
from .gaps import runs
from .mel import MelFrontend
from .splice import meet_edges


def check_vocoder_inputs(log_mel, segment, missing, frontend: MelFrontend, reference=None) -> None:
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
    if reference is not None and np.shape(reference) != segment.shape:
        raise ValueError(f"reference must have the segment's shape {segment.shape}, got {np.shape(reference)}")
    if reference is not None and not np.isfinite(reference).all():
        raise ValueError("reference holds NaN or infinite samples")


@dataclass
class Crop:
    """The stretch of a segment a vocoder needs to work on: the gaps plus ``context`` FFT lengths
    each side (as far as the segment reaches).  It starts on a frame boundary, so its frames are a
    slice of the segment's."""

    start: int
    end: int
    first_frame: int
    n_frames: int

    @classmethod
    def around(cls, missing: np.ndarray, frontend: MelFrontend, context: int = CROP_CONTEXT_FFTS) -> "Crop":
        s = frontend.settings
        idx = np.flatnonzero(missing)
        start = max(0, (idx[0] - context * s.n_fft) // s.hop_length) * s.hop_length
        end = min(len(missing), idx[-1] + 1 + context * s.n_fft)
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


def target_magnitude(known: torch.Tensor, hole: torch.Tensor, log_mel, frontend: MelFrontend,
                     fine_structure: bool = True, iterations: int = NNLS_ITERATIONS,
                     reference: torch.Tensor | None = None) -> torch.Tensor:
    """STFT magnitude to aim for: measured where frames are fully known; elsewhere the non-negative
    least-squares inverse of the Mel window, started (``fine_structure``) from a fine structure on
    the inpainted Mel envelope, so harmonics inside a wide band survive: the fine structure of
    ``reference`` (a matching stretch of the recording aligned to ``known``, the same shape) in
    the same frames, or else that of the nearest known frames."""
    target = frontend.stft_magnitude(known)
    missing_frames = frontend.missing_frames(hole.numpy())
    mel = np.asarray(log_mel)[..., missing_frames]
    start = None
    if fine_structure and reference is not None:
        start = fine_structure_of(frontend.stft_magnitude(reference), frontend)[..., missing_frames]
    elif fine_structure and not missing_frames.all():
        start = known_fine_structure(target, missing_frames, frontend)
    if start is not None:
        start = start * frontend.magnitude(mel, iterations=0)
    target[..., missing_frames] = frontend.magnitude(mel, iterations, start)
    return target


def fine_structure_of(magnitude: torch.Tensor, frontend: MelFrontend) -> torch.Tensor:
    """``magnitude`` ``[..., freq, frames]`` over its own Mel envelope (both lifted by a floor, so
    silent bins stay finite): what the Mel bands do not say."""
    floor = 1e-3 * magnitude.amax(dim=(-1, -2), keepdim=True).clamp(min=1e-12)
    envelope = frontend.magnitude(frontend.log_mel_from_magnitude(magnitude), iterations=0)
    return (magnitude + floor) / (envelope + floor)


def known_fine_structure(magnitude: torch.Tensor, missing_frames: np.ndarray, frontend: MelFrontend) -> torch.Tensor:
    """For each missing frame, the fine structure of the nearest known frame on each side,
    weighted by closeness.  ``magnitude`` ``[channels, freq, frames]`` -> ``[channels, freq, missing frames]``."""
    ratio = fine_structure_of(magnitude, frontend)
    known, wanted = np.flatnonzero(~missing_frames), np.flatnonzero(missing_frames)
    after = np.searchsorted(known, wanted)  # first known frame to the right of each missing one
    left = known[np.clip(after - 1, 0, len(known) - 1)]
    right = known[np.clip(after, 0, len(known) - 1)]
    # One side only where the other has no known frame (left == right then).
    span = np.where(right > left, right - left, 1)
    w = torch.from_numpy(np.clip((wanted - left) / span, 0, 1)).float()
    return (1 - w) * ratio[..., left] + w * ratio[..., right]


def constrained_griffin_lim(known, hole, target, angles, frontend: MelFrontend, n_iter: int, momentum: float = 0.99,
                            log_mel=None, mel_fit_after: int | None = None, mel_fit_every: int = 4, mel_fit_updates: int = 3):
    """Fast Griffin-Lim that puts the known samples back after every pass, so they pin the phase.

    ``known``: ``[channels, samples]`` with the hole zeroed; ``hole``: ``[samples]`` bool;
    ``target``: magnitudes ``[channels, freq, frames]``; ``angles``: unit phasors to start from.
    Returns the final unconstrained reconstruction.

    With ``log_mel`` (``[channels, n_mels, frames]``) and ``mel_fit_after``, the passes after that
    many aim at the target refitted to the Mel window from the magnitude a pass rebuilt, every
    ``mel_fit_every`` passes (``mel_fit_updates`` multiplicative updates, ``MelFrontend.mel_fitter``;
    each costs about what a pass does): the target keeps the fine structure the known samples impose
    and only its bands are held to the Mel.  This steers the phase; the final synthesis still uses
    ``target`` (the refit there was worse behind the U-Net).

    A frame clear of the hole holds known samples only, so its phase never changes: the passes
    run on the frames that touch the hole (where they lie clear of the crop's padded ends).
    """
    length = known.shape[-1]
    s = frontend.settings
    touching = np.flatnonzero(frontend.missing_frames(hole.numpy()))
    first, stop = int(touching[0]), int(touching[-1]) + 1
    lo, hi = first * s.hop_length - s.n_fft // 2, (stop - 1) * s.hop_length + s.n_fft // 2
    if lo < 0 or hi > length:
        first, stop, lo, hi = 0, target.shape[-1], 0, length
        overlap_add = lambda spec: frontend.istft(spec.transpose(-1, -2), length)  # noqa: E731
        analyse = lambda x: frontend.stft(x).transpose(-1, -2)  # noqa: E731
    else:
        overlap_add, analyse = _frames_between(frontend, stop - first)
    part = slice(first, stop)
    hole_here, known_here = hole[lo:hi], known[..., lo:hi]
    # The loop works frame-major ([..., frames, freq], each frame's bins contiguous, as the FFTs want),
    # and in numpy: its complex arithmetic is several times faster than torch's on the CPU.
    target_here = _frame_major(target[..., part])
    step = _frame_major(angles[..., part])  # a pass takes its phase from this (unit phasors at first)
    previous = np.zeros_like(step)
    refit = None
    if log_mel is not None and mel_fit_after is not None and n_iter > mel_fit_after:
        refit = frontend.mel_fitter(np.asarray(log_mel)[..., part])
    for i in range(n_iter):
        # The target magnitude on the step's phase: target * sgn(step), 0 staying 0.
        scale = np.abs(step)
        scale += np.float32(1e-30)
        np.divide(target_here, scale, out=scale)
        step *= scale
        x = torch.where(hole_here, overlap_add(torch.from_numpy(step)), known_here)
        rebuilt = np.ascontiguousarray(analyse(x).numpy())
        if refit is not None and i >= mel_fit_after and (i - mel_fit_after) % mel_fit_every == 0:
            rebuilt_magnitude = torch.from_numpy(np.abs(rebuilt).swapaxes(-1, -2)) + 1e-9
            target_here = _frame_major(refit(rebuilt_magnitude, mel_fit_updates))
        step = previous * np.float32(-momentum / (1 + momentum))  # the momentum step
        step += rebuilt
        previous = rebuilt
    angles = angles.clone()
    if n_iter:
        magnitude = np.abs(step)
        np.divide(step, magnitude, out=step, where=magnitude > 0)
        angles[..., part] = torch.from_numpy(step).transpose(-1, -2)
    return frontend.istft(target * angles, length)


def _frame_major(spec: torch.Tensor) -> np.ndarray:
    """``[..., freq, frames]`` -> a new contiguous numpy array ``[..., frames, freq]``."""
    return spec.transpose(-1, -2).numpy().copy()


def _frames_between(frontend: MelFrontend, n_frames: int):
    """STFT and overlap-add of ``n_frames`` whole frames with no padding (a stretch of a longer
    signal): ``[..., samples]`` <-> ``[..., n_frames, freq]`` (frame-major).  Overlap-add divides by
    the squared windows that cover each sample, so it equals the long signal's inverse STFT wherever
    every frame covering a sample is among these (a floor keeps the stretch's ends finite)."""
    s = frontend.settings
    window = frontend.window
    hop, n_fft = s.hop_length, s.n_fft
    length = (n_frames - 1) * hop + n_fft
    if n_fft % hop:  # the sum below cuts frames into whole hops
        fold = torch.nn.Fold(output_size=(1, length), kernel_size=(1, n_fft), stride=(1, hop))
        add_up = lambda frames: fold(torch.from_numpy(frames).transpose(1, 2))[:, 0, 0].numpy()  # noqa: E731
    else:

        def add_up(frames):  # [batch, n_frames, n_fft] -> [batch, length]: piece j of frame f lands on hop f + j
            pieces = frames.reshape(len(frames), n_frames, n_fft // hop, hop)
            out = np.zeros((len(frames), n_frames + n_fft // hop - 1, hop), dtype=np.float32)
            for j in range(n_fft // hop):
                out[:, j : j + n_frames] += pieces[:, :, j]
            return out.reshape(len(frames), length)

    synthesis_window = window.numpy()
    envelope = add_up(np.ascontiguousarray(np.broadcast_to(synthesis_window**2, (1, n_frames, n_fft))))[0].clip(min=1e-11)

    def overlap_add(spec):  # frame by frame, each frame's samples contiguous (numpy: fewer, cheaper calls)
        frames = torch.fft.irfft(spec, n=n_fft, dim=-1).numpy()  # [..., n_frames, n_fft]
        frames *= synthesis_window
        audio = add_up(frames.reshape(-1, n_frames, n_fft))
        audio /= envelope
        return torch.from_numpy(audio.reshape(*spec.shape[:-2], length))

    def analyse(audio):
        return torch.fft.rfft(audio.unfold(-1, n_fft, hop) * window, dim=-1)

    return overlap_add, analyse


def meet_known(free: np.ndarray, known: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Known samples where known; in each hole, ``free`` shifted so it meets them exactly at both ends."""
    out = np.array(known, dtype=np.float32, copy=True)
    length = free.shape[-1]
    for start, end in runs(hole):
        left = known[:, start - 1] - free[:, start - 1] if start > 0 else None
        right = known[:, end] - free[:, end] if end < length else None
        out[:, start:end] = meet_edges(free[:, start:end], left, right)
    return out
