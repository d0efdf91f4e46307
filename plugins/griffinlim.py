"""Griffin-Lim phase reconstruction, constrained by the known samples around the gap.

torchaudio's ``GriffinLim`` transform cannot re-impose known samples between
iterations, so the same fast (momentum) iteration runs on torch's STFT in
``melrestore.phase``: each pass rebuilds the signal from the target magnitudes,
puts the known samples back, and takes the new phase.  The known samples
thereby pin the phase of every frame that overlaps them, which is what makes
the splice fit.
"""

from __future__ import annotations

import numpy as np
import torch

from melrestore import hookimpl
from melrestore.phase import Crop, check_vocoder_inputs, constrained_griffin_lim, meet_known, single_thread, target_magnitude


class ConstrainedGriffinLim:
    def __init__(self, n_iter: int = 32, momentum: float = 0.99, seed: int = 0):
        self.n_iter = n_iter
        self.momentum = momentum
        self.seed = seed

    def vocode(self, log_mel, segment, missing, frontend):
        check_vocoder_inputs(log_mel, segment, missing, frontend)
        out = np.array(segment, dtype=np.float32, copy=True)
        if not missing.any():
            return out
        crop = Crop.around(missing, frontend)
        known = out[:, crop.start : crop.end]
        hole = missing[crop.start : crop.end]
        with torch.no_grad(), single_thread():
            known_t, hole_t = torch.from_numpy(known), torch.from_numpy(hole)
            target = target_magnitude(known_t, hole_t, crop.frames(log_mel), frontend)
            # Start from the known samples with faint noise in the hole.
            noise = 1e-4 * torch.randn(known.shape, generator=torch.Generator().manual_seed(self.seed))
            angles = frontend.stft(torch.where(hole_t, noise, known_t))
            angles = angles / (angles.abs() + 1e-16)
            free = constrained_griffin_lim(known_t, hole_t, target, angles, frontend, self.n_iter, self.momentum)
        out[:, crop.start : crop.end] = meet_known(free.numpy(), known, hole)
        return out


@hookimpl
def register_vocoders(register):
    register("griffin-lim", ConstrainedGriffinLim)
