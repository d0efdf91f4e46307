"""Fill quality on a signal whose spectrum is known: a sustained chord through the default Mel
pipeline (the shipped U-Net via ONNX Runtime, then Griffin-Lim)."""

import numpy as np
import pytest

from conftest import chord
from melrestore.gaps import Gap
from melrestore.metrics import snr
from melrestore.pipeline import PipelineOptions, build_engine

PARTIALS = (220.0, 277.2, 329.6)
NEAR_HZ = 40.0  # a little more than one Mel band around these partials (~31 Hz wide)


def _band_energies(x: np.ndarray, rate: int) -> tuple[np.ndarray, float]:
    """Energy within NEAR_HZ of each partial, and the share of all energy within NEAR_HZ of any
    (Hann-windowed power spectrum)."""
    n = 1 << 16
    power = np.abs(np.fft.rfft(x * np.hanning(len(x)), n=n)) ** 2
    distance = np.abs(np.fft.rfftfreq(n, 1 / rate)[:, None] - np.array(PARTIALS)[None])
    return (power[:, None] * (distance < NEAR_HZ)).sum(axis=0), float(power[distance.min(axis=1) < NEAR_HZ].sum() / power.sum())


@pytest.fixture(scope="module")
def default_mel_engine():
    return build_engine(PipelineOptions(long_gap_ms=0))  # the similarity repair would copy the chord


@pytest.mark.parametrize("rate", [44100, 48000])
def test_a_chord_s_fill_has_the_chord_s_partials_at_its_level(default_mel_engine, rate):
    clean = chord(3.0, rate, 2, freqs=PARTIALS)
    n = int(0.3 * rate)
    gap = Gap(rate + 1234, rate + 1234 + n)
    damaged = clean.copy()
    damaged[:, gap.start : gap.end] = 0.0
    fills, results = default_mel_engine.repair(damaged, rate, [gap])
    assert results[0].method == "mel"
    for fill, context in zip(fills[gap], clean[:, gap.start - n : gap.start]):
        fill_bands, fill_share = _band_energies(fill, rate)
        context_bands, _ = _band_energies(context, rate)
        # At least 95 % of the fill's energy lies within a Mel band of the chord's partials
        # (white noise would put 1 % there).
        assert fill_share > 0.95
        # Every partial is there, within 12 dB of its level before the gap (measured: -2 to -8 dB).
        assert np.all(np.abs(10 * np.log10(fill_bands / context_bands)) < 12)
        # The fill is as loud as the music around it, within 6 dB (measured: -3.6 dB).
        assert abs(20 * np.log10(np.sqrt(np.mean(fill**2)) / np.sqrt(np.mean(context**2)))) < 6


@pytest.mark.parametrize("gap_ms", [50, 400])
def test_a_mel_fill_carries_the_waveform_on_at_its_edges(default_mel_engine, gap_ms):
    """The first and last milliseconds of a Mel fill continue the music's own waveform (an
    autoregressive extrapolation from each side, faded into the vocoder's fill), fitted on the
    known samples only: another gap 20 ms after this one leaves its right side 20 ms of them."""
    rate = 44100
    clean = chord(3.0, rate, 2, freqs=PARTIALS)
    n, edge = int(gap_ms * rate / 1000), int(0.002 * rate)
    gap, other = Gap(rate, rate + n), Gap(rate + n + int(0.02 * rate), rate + n + int(0.2 * rate))
    damaged = clean.copy()
    for g in (gap, other):
        damaged[:, g.start : g.end] = 0.0
    truth = clean[:, gap.start : gap.end]
    fills = default_mel_engine.repair(damaged, rate, [gap, other])[0]
    # The same pipeline with the edges turned off in a config file's [pipeline] table.
    plain_engine = build_engine(PipelineOptions.from_config({"pipeline": {"long_gap_ms": 0, "edge_extrapolation_ms": 0}}))
    plain = plain_engine.repair(damaged, rate, [gap, other])[0]
    for side in (slice(0, edge), slice(n - edge, n)):
        # A sustained chord is what an autoregressive model predicts best (measured: 26 to 28 dB
        # over the first and last 2 ms; the vocoder's fill alone: 2 to 17 dB).
        assert snr(truth[:, side], fills[gap][:, side]) > 20
        assert snr(truth[:, side], fills[gap][:, side]) > snr(truth[:, side], plain[gap][:, side]) + 8
    # The middle of a long fill is the vocoder's alone.
    if gap_ms == 400:
        middle = slice(n // 4, 3 * n // 4)
        assert np.array_equal(fills[gap][:, middle], plain[gap][:, middle])
