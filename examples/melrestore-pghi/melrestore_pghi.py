"""A third-party melrestore vocoder: phase-gradient heap integration (PGHI).

PGHI (Prusa, Balazs and Sondergaard, 2017; the phase reconstruction GACELA used)
estimates the phase of a magnitude spectrogram from its gradients in one pass,
through the ``pghipy`` package.  The known samples around the gap then refine it
with a few constrained Griffin-Lim passes from ``melrestore.phase``, so the
splice stays seamless.
"""

import numpy as np

from melrestore import hookimpl

HANN_GAMMA = 0.25645  # times n_fft**2: the time-frequency ratio of a Hann window (Prusa et al.)


class PGHIVocoder:
    def __init__(self, refine_iterations: int = 8):
        self.refine_iterations = refine_iterations

    def vocode(self, log_mel, segment, missing, frontend):
        # Imported here, not at the top: `melrestore plugins` lists this plugin without loading torch.
        import pghipy
        import torch

        from melrestore.phase import Crop, check_vocoder_inputs, constrained_griffin_lim, meet_known, single_thread, target_magnitude

        check_vocoder_inputs(log_mel, segment, missing, frontend)
        out = np.array(segment, dtype=np.float32, copy=True)
        if not missing.any():
            return out
        s = frontend.settings
        crop = Crop.around(missing, frontend)
        known, hole = out[:, crop.start : crop.end], missing[crop.start : crop.end]
        with torch.no_grad(), single_thread():
            known_t, hole_t = torch.from_numpy(known), torch.from_numpy(hole)
            target = target_magnitude(known_t, hole_t, crop.frames(log_mel), frontend)
            # Frames that touch the gap take PGHI's phase, the others keep their measured one.
            pghi_phase = np.stack(
                [
                    pghipy.pghi(channel.numpy().T.astype(np.float64), s.n_fft, s.hop_length, gamma=HANN_GAMMA * s.n_fft**2).T
                    for channel in target
                ]
            )
            measured = frontend.stft(known_t)
            touching = torch.from_numpy(frontend.missing_frames(hole))
            angles = torch.where(touching, torch.polar(torch.ones_like(target), torch.from_numpy(pghi_phase).float()), measured / (measured.abs() + 1e-16))
            free = constrained_griffin_lim(known_t, hole_t, target, angles, frontend, self.refine_iterations)
        out[:, crop.start : crop.end] = meet_known(free.numpy(), known, hole)
        return out


@hookimpl
def register_vocoders(register):
    register("pghi", PGHIVocoder)
