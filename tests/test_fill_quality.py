"""Fill quality on a signal whose spectrum is known: a sustained chord through the default Mel
pipeline (the shipped U-Net via ONNX Runtime, then Griffin-Lim)."""

import numpy as np
import pytest

from conftest import chord
from melrestore.gaps import Gap
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
