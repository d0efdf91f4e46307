"""Griffin-Lim phase reconstruction, constrained by what is known around the gap.

torchaudio's ``GriffinLim`` transform cannot re-impose known samples between
iterations, so the same fast (momentum) iteration runs in ``melrestore.phase``
(torch's FFTs, numpy's complex arithmetic): each pass rebuilds the signal from the target magnitudes,
puts the known samples back, and takes the new phase.  The known samples
thereby pin the phase of every frame that overlaps them, which is what makes
the splice fit.  The target magnitude of the frames that touch the gap is the
non-negative least-squares inverse of the Mel window, started from the fine
structure of the nearest known frames (see ``melrestore.phase.target_magnitude``); a short gap's
later passes refit it to the Mel from the magnitude they rebuilt, which carries the fine structure
the known samples impose.  Where the engine found a stretch of the recording that matches the gap's
surroundings well enough (``reference_min_quality``), that stretch, aligned to the sample, gives
the fine structure instead and is where the iterations start from.
"""

from __future__ import annotations

import numpy as np

from melrestore import hookimpl
from melrestore.analysis import CROP_CONTEXT_FFTS, NNLS_ITERATIONS


class ConstrainedGriffinLim:
    """``n_iter`` None: as many iterations as ``iteration_budget`` frame-passes allow over the
    frames that touch the gap, between ``min_iter`` and ``max_iter`` (short gaps are cheap and gain
    the most from more).  After the first ``mel_fit_after`` passes (so only short gaps, which get
    that many), every ``mel_fit_every`` passes refit the target magnitude to the Mel window from
    what the pass rebuilt (see ``melrestore.phase.constrained_griffin_lim``).

    It takes the engine's best-matching stretch (``reference``) when its match quality reaches
    ``reference_min_quality`` (above 1: never)."""

    def __init__(self, n_iter: int | None = None, momentum: float = 0.99, seed: int = 0, min_iter: int = 32,
                 max_iter: int = 200, iteration_budget: int = 2000, context_ffts: int = CROP_CONTEXT_FFTS,
                 fine_structure: bool = True, nnls_iterations: int = NNLS_ITERATIONS, mel_fit_after: int = 100,
                 mel_fit_every: int = 4, mel_fit_updates: int = 3, reference_min_quality: float = 0.25):
        self.n_iter = n_iter
        self.momentum = momentum
        self.seed = seed
        self.min_iter, self.max_iter, self.iteration_budget = min_iter, max_iter, iteration_budget
        self.context_ffts = context_ffts
        self.fine_structure = fine_structure
        self.nnls_iterations = nnls_iterations
        self.mel_fit_after, self.mel_fit_every, self.mel_fit_updates = mel_fit_after, mel_fit_every, mel_fit_updates
        self.reference_min_quality = reference_min_quality

    def iterations(self, missing_frames: int) -> int:
        if self.n_iter is not None:
            return self.n_iter
        return int(np.clip(self.iteration_budget // max(1, missing_frames), self.min_iter, self.max_iter))

    def vocode(self, log_mel, segment, missing, frontend, reference=None):
        import torch  # here, not at the top: listing the plugins must not load torch

        from melrestore.phase import Crop, check_vocoder_inputs, constrained_griffin_lim, meet_known, single_thread, target_magnitude

        check_vocoder_inputs(log_mel, segment, missing, frontend, reference)
        out = np.array(segment, dtype=np.float32, copy=True)
        if not missing.any():
            return out
        crop = Crop.around(missing, frontend, self.context_ffts)
        known = out[:, crop.start : crop.end]
        hole = missing[crop.start : crop.end]
        n_iter = self.iterations(int(frontend.missing_frames(hole).sum()))
        with torch.no_grad(), single_thread():
            known_t, hole_t = torch.from_numpy(known), torch.from_numpy(hole)
            match = None
            if reference is not None:
                match = torch.from_numpy(np.ascontiguousarray(reference[:, crop.start : crop.end], dtype=np.float32))
            target = target_magnitude(known_t, hole_t, crop.frames(log_mel), frontend, self.fine_structure,
                                      self.nnls_iterations, match)
            # Start from the known samples with the matching stretch in the hole, or else faint noise.
            if match is None:
                fill = 1e-4 * torch.randn(known.shape, generator=torch.Generator().manual_seed(self.seed))
            else:
                fill = match
            angles = frontend.stft(torch.where(hole_t, fill, known_t))
            angles = angles / (angles.abs() + 1e-16)
            free = constrained_griffin_lim(known_t, hole_t, target, angles, frontend, n_iter, self.momentum,
                                           crop.frames(log_mel), self.mel_fit_after, self.mel_fit_every, self.mel_fit_updates)
        out[:, crop.start : crop.end] = meet_known(free.numpy(), known, hole)
        return out


@hookimpl
def register_vocoders(register):
    register("griffin-lim", ConstrainedGriffinLim)
