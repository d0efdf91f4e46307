"""The evaluation's measures against values worked out by hand on tiny signals."""

import numpy as np
import pytest

from melrestore.metrics import gap_fft_size, gap_metrics, log_mel_l1, log_spectral_distance, snr, spectral_convergence


def _two_clicks(first: float = 1.0, second: float = 1.0) -> np.ndarray:
    """40 samples -> FFT size 32, hop 8, two frames (samples 0-31 and 8-39).  A click at sample 4
    is seen by the first frame only, one at sample 36 by the second only; a click's windowed
    spectrum is flat, |X(k)| = amplitude * hann[position in frame]."""
    x = np.zeros(40)
    x[4], x[36] = first, second
    return x


HANN = np.hanning(32)


def test_fft_size_follows_the_gap_length():
    assert gap_fft_size(40) == 32
    assert gap_fft_size(10) == 32 and gap_fft_size(100_000) == 2048


def test_a_gap_shorter_than_the_smallest_fft_is_scored_as_one_frame():
    # 22 samples is a 1 ms gap at 22.05 kHz; no sample of even a 2-sample gap is windowed away.
    x = np.random.default_rng(0).standard_normal(22)
    for n in (22, 2, 1):
        assert log_spectral_distance(x[:n], 2 * x[:n]) == pytest.approx(20 * np.log10(2), rel=1e-6)
        assert spectral_convergence(x[:n], 0.5 * x[:n]) == pytest.approx(0.5, rel=1e-6)


def test_log_spectral_distance_is_the_mean_over_frames_of_each_frame_s_rms_difference():
    # First frame 10x louder in every bin (20 dB), second frame the same (0 dB): the mean of the
    # per-frame RMS differences is 10 dB (an RMS over all bins at once would say 14.1 dB).
    assert log_spectral_distance(_two_clicks(), _two_clicks(first=10.0)) == pytest.approx(10.0, abs=1e-6)
    assert log_spectral_distance(_two_clicks(), _two_clicks(first=-1.0)) == pytest.approx(0.0, abs=1e-9)  # phase is ignored


def test_spectral_convergence_is_the_relative_magnitude_error():
    # |X| is flat within each frame: 17 bins of HANN[4] in the first, of HANN[28] in the second.
    # ||ref - est|| / ||ref|| = sqrt(17 * (9 * HANN[4])^2) / sqrt(17 * (HANN[4]^2 + HANN[28]^2)).
    expected = 9 * HANN[4] / np.sqrt(HANN[4] ** 2 + HANN[28] ** 2)
    assert spectral_convergence(_two_clicks(), _two_clicks(first=10.0)) == pytest.approx(expected, rel=1e-6)
    assert spectral_convergence(_two_clicks(), _two_clicks(first=-1.0, second=-1.0)) == pytest.approx(0.0, abs=1e-9)
    assert spectral_convergence(_two_clicks(), np.zeros(40)) == pytest.approx(1.0)


def test_snr():
    x = np.array([3.0, -4.0])  # energy 25
    assert snr(x, np.array([3.0, -3.0])) == pytest.approx(10 * np.log10(25 / 1))
    assert snr(x, np.zeros(2)) == pytest.approx(0.0)
    assert snr(x, -x) == pytest.approx(10 * np.log10(25 / 100))


def test_log_mel_l1_counts_only_the_frames_that_touch_the_gap():
    rate = 44100
    x = 0.1 * np.random.default_rng(0).standard_normal(3 * rate)
    start, end = rate, rate + 4410
    # Twice as loud everywhere: every band of every frame is ln 2 higher (noise is far above the log floor).
    assert log_mel_l1(x, 2 * x, start, end, rate) == pytest.approx(np.log(2), abs=1e-3)
    # A change more than an FFT length after the gap shows in frames that do not touch it: not counted.
    far = x.copy()
    far[end + 2048 + 512 :] *= 2
    assert log_mel_l1(x, far, start, end, rate) == 0.0


def test_gap_metrics_average_the_channels_and_compare_only_the_gap():
    rate = 44100
    reference = 0.1 * np.random.default_rng(1).standard_normal((2, rate))
    start, end = 10000, 14096
    estimate = reference.copy()
    estimate[0, start:end] *= 0.5  # channel 0: 6.02 dB SNR and LSD
    estimate[1, start:end] *= -1  # channel 1: -6.02 dB SNR, 0 dB LSD
    estimate[:, :start] = 0.0  # outside the gap: not compared by the waveform measures
    scores = gap_metrics(reference, estimate, start, end, rate)
    assert scores["snr_db"] == pytest.approx(0.0, abs=1e-6)
    assert scores["lsd_db"] == pytest.approx(10 * np.log10(4) / 2, rel=1e-6)
    assert scores["spectral_convergence"] == pytest.approx(0.25, rel=1e-6)  # (0.5 + 0) / 2
