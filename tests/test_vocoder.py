"""The built-in vocoder's pieces on real signals: the Mel inverse, the fine structure of the known
frames, and the ceiling it reaches with a perfect Mel."""

import numpy as np
import pytest
import torch

from conftest import music_excerpt
from melrestore.mel import MelFrontend, MelSettings
from melrestore.metrics import snr
from melrestore.plugins.griffinlim import ConstrainedGriffinLim

# The vocoder as it was before the Mel inverse and the fine structure (32 iterations throughout).
PLAIN = dict(n_iter=32, fine_structure=False, nnls_iterations=0)


@pytest.fixture(scope="module")
def frontend():
    return MelFrontend(MelSettings())


def test_the_mel_inverse_recovers_the_magnitude_better_than_the_even_spread(frontend):
    audio, _ = music_excerpt()
    magnitude = frontend.stft(torch.from_numpy(audio[:, 44100:88200])).abs()
    log_mel = frontend.log_mel_from_magnitude(magnitude)

    def error(estimate):
        return float((estimate - magnitude).norm() / magnitude.norm())

    spread, nnls = frontend.magnitude(log_mel, iterations=0), frontend.magnitude(log_mel)
    assert nnls.shape == magnitude.shape and (nnls >= 0).all()
    assert error(nnls) < 0.8 * error(spread)
    # And it still has the Mel it was given.
    again = frontend.log_mel_from_magnitude(nnls)
    assert float((again - log_mel).abs().mean()) < float((frontend.log_mel_from_magnitude(spread) - log_mel).abs().mean())


def _harmonic_tone(seconds, rate):
    """A 110 Hz tone with 40 harmonics: above about 2 kHz several fall into one Mel band."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * sum(np.sin(2 * np.pi * 110 * k * t + k) / k**0.5 for k in range(1, 41)) / 10)[None].astype(np.float32)


def _fill_with_true_mel(vocoder, frontend, audio, start, end):
    missing = np.zeros(audio.shape[1], dtype=bool)
    missing[start:end] = True
    damaged = np.where(missing, 0.0, audio).astype(np.float32)
    return vocoder.vocode(frontend.log_mel(audio), damaged, missing, frontend)[:, start:end]


def test_harmonics_inside_a_mel_band_come_from_the_known_frames(frontend):
    rate = 44100
    tone = _harmonic_tone(2.0, rate)
    start, end = 40000, 40000 + int(0.3 * rate)

    def harmonic_contrast(fill):
        # Spectrum from 2 to 4.4 kHz: energy on the harmonics against energy between them.
        spectrum = np.abs(np.fft.rfft(fill[0] * np.hanning(fill.shape[1])))
        hz = np.fft.rfftfreq(fill.shape[1], 1 / rate)
        band = (hz > 2000) & (hz < 4400)
        on = np.abs(((hz / 110 + 0.5) % 1) - 0.5) < 0.1
        return spectrum[band & on].mean() / spectrum[band & ~on].mean()

    with_fine = harmonic_contrast(_fill_with_true_mel(ConstrainedGriffinLim(), frontend, tone, start, end))
    without = harmonic_contrast(_fill_with_true_mel(ConstrainedGriffinLim(fine_structure=False), frontend, tone, start, end))
    assert with_fine > 2 * without


def test_a_perfect_mel_recovers_the_waveform_of_short_gaps_in_real_music(frontend):
    audio, rate = music_excerpt()
    audio = audio[:, : 4 * rate]
    n = int(0.05 * rate)
    starts = [int(s * rate) for s in (0.8, 1.5, 2.2, 2.9)]

    def mean_snr(vocoder):
        return np.mean([snr(audio[:, s : s + n].ravel(), _fill_with_true_mel(vocoder, frontend, audio, s, s + n).ravel()) for s in starts])

    default = mean_snr(ConstrainedGriffinLim())
    assert default > 8.0
    assert mean_snr(ConstrainedGriffinLim(**PLAIN)) < default - 3.0
    # Refitting the target to the Mel in the later passes is worth decibels of it, and so is the
    # momentum of fast Griffin-Lim (2.5 dB here against plain passes).
    assert mean_snr(ConstrainedGriffinLim(mel_fit_after=10**6)) < default - 1.0
    assert mean_snr(ConstrainedGriffinLim(momentum=0.0)) < default - 1.5


def test_the_mel_refit_leaves_gaps_with_few_passes_alone(frontend):
    audio, rate = music_excerpt()
    start, end = rate, rate + int(0.4 * rate)  # 400 ms: fewer passes than mel_fit_after
    touching = frontend.missing_frames((np.arange(3 * rate) >= start) & (np.arange(3 * rate) < end)).sum()
    assert ConstrainedGriffinLim().iterations(int(touching)) <= ConstrainedGriffinLim().mel_fit_after
    np.testing.assert_array_equal(_fill_with_true_mel(ConstrainedGriffinLim(), frontend, audio[:, : 3 * rate], start, end),
                                  _fill_with_true_mel(ConstrainedGriffinLim(mel_fit_after=10**6), frontend, audio[:, : 3 * rate], start, end))


def test_short_gaps_get_more_iterations_than_long_ones():
    vocoder = ConstrainedGriffinLim()
    assert vocoder.iterations(10) == vocoder.max_iter
    assert vocoder.iterations(400) == vocoder.min_iter
    assert vocoder.iterations(10) > vocoder.iterations(20) > vocoder.iterations(40)
    assert ConstrainedGriffinLim(n_iter=7).iterations(10) == 7


@pytest.mark.parametrize("n_fft, hop_length", [(2048, 512), (1024, 384)])  # hops that do and do not divide the FFT
def test_the_passes_over_the_frames_that_touch_the_hole_equal_the_whole_stft(n_fft, hop_length):
    """Griffin-Lim iterates on the frames that touch the hole only: their STFT and overlap-add
    must equal the whole signal's, on every sample those frames alone cover."""
    from melrestore.phase import _frames_between

    frontend = MelFrontend(MelSettings(n_fft=n_fft, hop_length=hop_length))
    s = frontend.settings
    music, rate = music_excerpt()
    assert rate == s.sample_rate
    audio = torch.from_numpy(np.ascontiguousarray(music[:, : 60 * s.hop_length], dtype=np.float32))
    first, stop = 20, 31
    lo, hi = first * s.hop_length - s.n_fft // 2, (stop - 1) * s.hop_length + s.n_fft // 2
    overlap_add, analyse = _frames_between(frontend, stop - first)
    whole = frontend.stft(audio)
    frames = whole[..., first:stop].transpose(-1, -2)  # the passes work frame-major
    torch.testing.assert_close(analyse(audio[:, lo:hi]), frames, rtol=0, atol=1e-4)
    # Every sample at least one frame length in from the stretch's ends is covered by these frames only.
    inner = slice(s.n_fft, hi - lo - s.n_fft)
    torch.testing.assert_close(overlap_add(frames.contiguous())[:, inner], audio[:, lo:hi][:, inner], rtol=0, atol=1e-5)
