"""Tests for bugs the rest of the suite let through (issue 17's deliberate-bug table): each one was
checked once by putting the bug in and seeing the test fail."""

import numpy as np
import pytest

from conftest import chord
from melrestore.engine import Engine
from melrestore.gaps import Gap
from melrestore.mel import MelFrontend, MelSettings
from melrestore.metrics import snr
from melrestore.phase import meet_known
from melrestore.plugins.griffinlim import ConstrainedGriffinLim
from melrestore.plugins.interpolation import Interpolation
from melrestore.plugins.lsar import BANDED_FROM, LSAR


def test_lsar_recovers_a_chord_across_a_gap_long_enough_for_the_banded_solver():
    rate = 44100
    clean = chord(1.0, rate, 1)
    n = BANDED_FROM + 1000  # 115 ms: solved by the banded path, at the long-gap order
    start = 20000
    damaged = clean.copy()
    damaged[:, start : start + n] = 0.0
    fill = LSAR().repair(damaged, start, start + n, rate)
    truth = clean[:, start : start + n]
    # 15 dB at the long-gap order (64); the same solve with its sign flipped gives below 0 dB.
    assert snr(truth[0], fill[0]) > 10


def _perfect_mel_case(gap_ms: float):
    """A chord window at the shipped analysis settings, a gap in the middle, and its true log-Mel."""
    frontend = MelFrontend(MelSettings())
    rate = frontend.settings.sample_rate
    clean = chord(frontend.settings.samples_for(128) / rate, rate, 1)
    n = int(gap_ms * rate / 1000)
    start = (clean.shape[1] - n) // 2
    missing = np.zeros(clean.shape[1], dtype=bool)
    missing[start : start + n] = True
    return frontend, clean, np.where(missing, 0.0, clean).astype(np.float32), missing, frontend.log_mel(clean)


def test_griffin_lim_pinned_by_the_known_samples_finds_the_chord_s_phase():
    """With the true Mel, the known samples around a 20 ms gap pin the phase: the fill is the chord
    itself (8 dB SNR), not just its spectrum (-6 dB when they are not put back after each pass)."""
    frontend, clean, damaged, missing, log_mel = _perfect_mel_case(20)
    out = ConstrainedGriffinLim().vocode(log_mel, damaged, missing, frontend)
    assert snr(clean[0, missing], out[0, missing]) > 4.0


def test_meet_known_makes_an_offset_fill_meet_both_neighbours():
    rate = 44100
    known = chord(0.2, rate, 2)
    hole = np.zeros(known.shape[1], dtype=bool)
    hole[3000:5000] = True
    free = known + 0.3  # right shape everywhere, but shifted: it meets neither side
    out = meet_known(free, np.where(hole, 0.0, known).astype(np.float32), hole)
    step = np.abs(np.diff(known, axis=1)).max()
    assert np.array_equal(out[:, ~hole], known[:, ~hole])
    assert np.abs(out[:, 3000] - known[:, 2999]).max() < 2 * step
    assert np.abs(out[:, 4999] - known[:, 5000]).max() < 2 * step


class _SineFit:
    """A vocoder that knows the signal is one sine of a given frequency: it fits amplitude and
    phase to the known samples and fills the hole with that sine, exactly."""

    def __init__(self, hz: float):
        self.hz = hz

    def vocode(self, log_mel, segment, missing, frontend):
        t = np.arange(segment.shape[1]) / frontend.settings.sample_rate
        basis = np.stack([np.sin(2 * np.pi * self.hz * t), np.cos(2 * np.pi * self.hz * t)], axis=1)
        known = ~missing
        known[: frontend.settings.n_fft] = known[-frontend.settings.n_fft :] = False  # resampling edge effects
        out = np.array(segment, dtype=np.float32, copy=True)
        for c, channel in enumerate(segment):
            weights = np.linalg.lstsq(basis[known], channel[known], rcond=None)[0]
            out[c, missing] = (basis @ weights)[missing]
        return out


@pytest.mark.parametrize("rate", [44100, 48000])
def test_the_engine_splices_a_perfect_fill_exactly_where_the_gap_is(rate):
    """A perfect vocoder's fill must come back at the very samples it belongs to: one sample
    off costs a 440 Hz sine 25 dB of SNR at these rates."""
    hz = 440.0
    clean = (0.5 * np.sin(2 * np.pi * hz * np.arange(2 * rate) / rate)).astype(np.float32)[None]
    gap = Gap(rate // 2 + 17, rate // 2 + 17 + rate // 10)
    damaged = clean.copy()
    damaged[:, gap.start : gap.end] = 0.0
    engine = Engine(Interpolation(), _SineFit(hz), MelSettings())
    fills, results = engine.repair(damaged, rate, [gap])
    assert results[0].status == "repaired", results[0].message
    assert snr(clean[0, gap.start : gap.end], fills[gap][0]) > 40
