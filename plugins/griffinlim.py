"""Griffin-Lim phase reconstruction, constrained by the known samples around the gap.

torchaudio's ``GriffinLim`` transform cannot re-impose known samples between
iterations, so the same fast (momentum) iteration is written out here with
torch's STFT: each pass rebuilds the signal from the target magnitudes, puts the
known samples back, and takes the new phase.  The known samples thereby pin the
phase of every frame that overlaps them, which is what makes the splice fit.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from melrestore import hookimpl
from melrestore.gaps import runs
from melrestore.splice import meet_edges


class ConstrainedGriffinLim:
    def __init__(self, n_iter: int = 32, momentum: float = 0.99, seed: int = 0):
        self.n_iter = n_iter
        self.momentum = momentum
        self.seed = seed

    def vocode(self, log_mel, segment, missing, frontend):
        out = np.array(segment, dtype=np.float32, copy=True)
        if not missing.any():
            return out
        s = frontend.settings
        # Work on the frames that touch the gaps plus one window of context: frames further out are
        # fully known and do not interact with the filled ones.
        idx = np.flatnonzero(missing)
        lo = max(0, (idx[0] - s.n_fft) // s.hop_length) * s.hop_length
        hi = min(len(missing), idx[-1] + 1 + s.n_fft)
        first_frame = lo // s.hop_length
        n_frames = s.frames_for(hi - lo)
        mel = np.asarray(log_mel)[:, :, first_frame : first_frame + n_frames]
        if mel.shape[-1] < n_frames:  # segment tail shorter than a hop: repeat the last frame
            mel = np.concatenate([mel, np.repeat(mel[:, :, -1:], n_frames - mel.shape[-1], axis=-1)], axis=-1)
        known = torch.from_numpy(out[:, lo:hi])
        hole = torch.from_numpy(missing[lo:hi])
        with torch.no_grad(), _single_thread():
            filled = self._reconstruct(known, hole, mel, frontend)
        out[:, lo:hi] = filled.numpy()
        return out

    def _reconstruct(self, known, hole, log_mel, frontend):
        length = known.shape[-1]
        target = frontend.stft(known).abs()
        missing_frames = torch.from_numpy(frontend.missing_frames(hole.numpy()))
        target[..., missing_frames] = frontend.magnitude(log_mel)[..., missing_frames]

        generator = torch.Generator().manual_seed(self.seed)
        noise = 1e-4 * torch.randn(known.shape, generator=generator)
        x = torch.where(hole, noise, known)
        angles = frontend.stft(x)
        angles = angles / (angles.abs() + 1e-16)
        previous = torch.zeros_like(angles)
        for _ in range(self.n_iter):
            x = torch.where(hole, frontend.istft(target * angles, length), known)
            rebuilt = frontend.stft(x)
            angles = rebuilt - previous * (self.momentum / (1 + self.momentum))
            angles = angles / (angles.abs() + 1e-16)
            previous = rebuilt
        free = frontend.istft(target * angles, length)
        return torch.where(hole, _meet_known(free, known, hole), known)


@contextlib.contextmanager
def _single_thread():
    """These FFTs are small: one thread runs them several times faster than a pool."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _meet_known(free, known, hole):
    """Shift each filled run so it starts and ends exactly where the known samples leave off
    (the unconstrained reconstruction is close to them, not equal)."""
    free, known = free.numpy(), known.numpy()
    out = free.copy()
    length = free.shape[-1]
    for start, end in runs(hole.numpy()):
        left = known[:, start - 1] - free[:, start - 1] if start > 0 else None
        right = known[:, end] - free[:, end] if end < length else None
        out[:, start:end] = meet_edges(free[:, start:end], left, right)
    return torch.from_numpy(out)


@hookimpl
def register_vocoders(register):
    register("griffin-lim", ConstrainedGriffinLim)
