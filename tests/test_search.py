"""The similarity search (melrestore.search) and the repairer built on it (plugins/similarity.py)."""

import subprocess
import sys

import numpy as np
import pytest

from melrestore.gaps import Gap
from melrestore.metrics import snr
from melrestore.search import RecordingIndex, _MonoBlocks
from melrestore.plugins.similarity import SimilarityRepair

RATE = 22050
PERIOD = 27221  # samples in one phrase: 1.2345 s, not a whole number of STFT hops
ALWAYS = {"max_match_ratio": np.inf, "long_gap_max_match_ratio": np.inf}  # no gate: always copy the best match


def phrase_played_over(seconds: float, seed: int = 0, period: int = PERIOD) -> np.ndarray:
    """A phrase of eight notes (decaying harmonics) over a bass drone, repeated: ``[2, samples]``."""
    rng = np.random.default_rng(seed)
    t = np.arange(period) / RATE
    phrase = 0.1 * np.sin(2 * np.pi * 55.0 * t)
    step = period // 8
    for i, f in enumerate(rng.uniform(200, 900, size=8)):
        tt = t[: period - i * step]
        note = sum(np.sin(2 * np.pi * h * f * tt) / h for h in (1, 2, 3)) * np.exp(-tt * 6)
        phrase[i * step :] += 0.15 * note
    mono = np.tile(phrase, int(np.ceil(seconds * RATE / period)))[: int(seconds * RATE)]
    return np.stack([mono, 0.8 * mono]).astype(np.float32)


def with_gap(clean: np.ndarray, at_s: float, seconds: float = 0.6) -> tuple[np.ndarray, Gap]:
    """``clean`` with a gap of ``seconds`` punched at ``at_s`` (777 samples past it: off the hop grid)."""
    start = int(at_s * RATE) + 777
    gap = Gap(start, start + int(seconds * RATE))
    damaged = clean.copy()
    damaged[:, gap.start : gap.end] = 0.0
    return damaged, gap


def test_the_search_finds_the_repeat_to_the_sample_and_the_copy_restores_the_gap():
    clean = phrase_played_over(12.0)
    damaged, gap = with_gap(clean, 5.0)
    matches = RecordingIndex(damaged, RATE).top_matches(gap.start, gap.end, k=4)
    assert len(matches) == 4 and matches[0].distance <= matches[1].distance
    assert matches[0].shift_samples % PERIOD == 0 and matches[0].shift_samples != 0
    assert matches[0].ratio < 0.1
    fill = SimilarityRepair().repair(damaged, gap.start, gap.end, RATE)
    truth = clean[:, gap.start : gap.end]
    assert min(snr(t, f) for t, f in zip(truth, fill)) > 20


def test_the_search_stays_within_its_radius_and_still_finds_a_repeat_there():
    damaged, gap = with_gap(phrase_played_over(20.0), 10.0)
    everywhere = RecordingIndex(damaged, RATE).top_matches(gap.start, gap.end, k=6)
    assert max(abs(m.shift_samples) for m in everywhere) > 4 * RATE  # repeats further away are as good
    near = RecordingIndex(damaged, RATE, radius_s=4.0).top_matches(gap.start, gap.end, k=6)
    assert near and all(abs(m.shift_samples) <= 4 * RATE for m in near)
    assert near[0].shift_samples % PERIOD == 0 and near[0].ratio < 0.1


def test_a_stretch_where_one_channel_dropped_out_is_never_copied_but_a_dead_channel_is_no_bar():
    damaged, gap = with_gap(phrase_played_over(12.0), 5.0)
    repeats = [m.shift_samples for m in RecordingIndex(damaged, RATE).top_matches(gap.start, gap.end, k=6)]
    dropout = gap.start + repeats[0] + 3000  # inside the best repeat, in the second channel only
    damaged[1, dropout : dropout + 2000] = 0.0
    after = [m.shift_samples for m in RecordingIndex(damaged, RATE).top_matches(gap.start, gap.end, k=6)]
    assert repeats[0] not in after and after[0] % PERIOD == 0  # the next repeat instead
    dead = damaged.copy()
    dead[1] = 0.0  # a channel silent from end to end: the other still holds music to copy
    assert RecordingIndex(dead, RATE).top_matches(gap.start, gap.end, k=1)[0].shift_samples % PERIOD == 0


def test_reads_of_the_mono_mix_in_blocks_equal_reading_the_stretch():
    audio = phrase_played_over(3.0)
    mono = _MonoBlocks(audio, block_samples=1000, max_blocks=3)
    for lo, hi in [(0, 10), (990, 1010), (2500, 9100), (1000, 2000), (5, 6), (64000, audio.shape[1])]:
        np.testing.assert_array_equal(mono(lo, hi), audio[:, lo:hi].mean(axis=0))
    assert len(mono.blocks) <= 3


def test_the_repair_does_not_depend_on_which_recordings_came_before():
    one, two = phrase_played_over(10.0, seed=1), phrase_played_over(10.0, seed=2)
    gaps = {"one": Gap(4 * RATE + 100, 4 * RATE + 100 + RATE // 3), "two": Gap(6 * RATE, 6 * RATE + RATE)}
    for audio, gap in ((one, gaps["one"]), (two, gaps["two"])):
        audio[:, gap.start : gap.end] = 0.0

    def run(order):
        repairer = SimilarityRepair(**ALWAYS)
        recordings = {"one": one, "two": two}
        return {name: repairer.repair(recordings[name], gaps[name].start, gaps[name].end, RATE) for name in order}

    forward, backward = run(["one", "two", "one"]), run(["two", "one"])
    for name in ("one", "two"):
        np.testing.assert_array_equal(forward[name], backward[name])


def test_a_recording_changed_in_place_is_searched_afresh():
    gap = Gap(4 * RATE, 4 * RATE + RATE // 2)
    audio = phrase_played_over(10.0, seed=1)
    audio[:, gap.start : gap.end] = 0.0
    repairer = SimilarityRepair(**ALWAYS)
    repairer.repair(audio, gap.start, gap.end, RATE)
    # The same array (same id, shape and rate) now holds other music with a phrase of another length.
    audio[:] = phrase_played_over(10.0, seed=2, period=30011)
    audio[:, gap.start : gap.end] = 0.0
    fresh = SimilarityRepair(**ALWAYS).repair(audio, gap.start, gap.end, RATE)
    np.testing.assert_array_equal(repairer.repair(audio, gap.start, gap.end, RATE), fresh)


def test_a_gap_without_clean_context_is_declined():
    audio = phrase_played_over(6.0)
    with pytest.raises(ValueError, match="context"):
        SimilarityRepair().repair(audio, RATE // 4, RATE // 2, RATE)



def phrase_with_a_passage_heard_once(seconds: float = 16.0, passage=(10.0, 15.0)) -> np.ndarray:
    """The repeated phrase, except for a passage that the recording plays only once: a tremolo chord
    gliding up an octave, so that no stretch of the passage sounds like another (a chord held still
    would repeat itself, and a copy from further along it would be a fair fill)."""
    audio = phrase_played_over(seconds)
    lo, hi = (int(s * RATE) for s in passage)
    t = np.arange(hi - lo) / RATE
    phase = 2 * np.pi * np.cumsum(2 ** (t / t[-1])) / RATE  # the phase of 1 Hz gliding to 2 Hz
    chord = sum(0.08 * np.sin(f * phase) for f in (311.1, 392.0, 466.2)) * (1 + 0.3 * np.sin(2 * np.pi * 5 * t))
    audio[:, lo:hi] = np.stack([chord, 0.8 * chord])
    return audio


@pytest.mark.parametrize("gap_s", [0.4, 1.0])  # one each side of the gate's long_gap_s
def test_the_gate_copies_an_exact_repeat_and_declines_a_passage_heard_only_once(gap_s):
    clean = phrase_with_a_passage_heard_once()
    length = int(gap_s * RATE)
    repeated = Gap(2 * RATE + 123, 2 * RATE + 123 + length)  # in the phrase, which repeats
    once = Gap(int(12.5 * RATE) - length // 2, int(12.5 * RATE) + length - length // 2)  # inside the passage
    damaged = clean.copy()
    for gap in (repeated, once):
        damaged[:, gap.start : gap.end] = 0.0
    repairer = SimilarityRepair()
    fill = repairer.repair(damaged, repeated.start, repeated.end, RATE)
    assert min(snr(t, f) for t, f in zip(clean[:, repeated.start : repeated.end], fill)) > 20
    with pytest.raises(ValueError, match="closely enough"):
        repairer.repair(damaged, once.start, once.end, RATE)


def test_bands_correlated_together_sum_to_the_bands_one_at_a_time():
    from melrestore.correlate import BANDS_PER_CALL, correlate_bands

    rng = np.random.default_rng(0)
    bands = rng.standard_normal((2 * BANDS_PER_CALL + 3, 700)).astype(np.float32)  # groups of 16, 16 and 3
    kernels = rng.standard_normal((len(bands), 40))
    one_at_a_time = 0.0
    for band, kernel in zip(bands.astype(np.float64), kernels):
        one_at_a_time = one_at_a_time + np.correlate(band, kernel, mode="valid")
    together = correlate_bands(bands, kernels)
    assert together.shape == (700 - 40 + 1,)
    np.testing.assert_allclose(together, one_at_a_time, rtol=1e-9, atol=1e-9)
    # Weights per position: the same as weighting the bands first.
    weights = (rng.random(700) > 0.3).astype(np.float64)
    assert np.array_equal(correlate_bands(bands, kernels, weights), correlate_bands(bands * weights, kernels))


@pytest.mark.parametrize("n, m", [(700, 40), (2048, 1024), (50, 50), (300, 1)])
def test_correlation_by_fft_equals_the_direct_sum(n, m):
    from melrestore.correlate import correlate

    rng = np.random.default_rng(n + m)
    signal, kernel = rng.standard_normal(n), rng.standard_normal(m)
    np.testing.assert_allclose(correlate(signal, kernel), np.correlate(signal, kernel, mode="valid"), rtol=1e-9, atol=1e-9)
    rows = correlate(np.stack([signal, -2 * signal]), np.stack([kernel, kernel]))  # row by row on the last axis
    np.testing.assert_allclose(rows[1], -2 * rows[0], rtol=1e-12, atol=1e-12)


def test_the_engine_does_not_import_scipy_signal():
    """scipy.signal takes about half a second to import, at every start of melrestore."""
    code = ("import sys; from melrestore.pipeline import PipelineOptions, build_engine; build_engine(PipelineOptions()); "
            "assert 'scipy.signal' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("gap_start", [6000, 900])  # the second leaves fewer than the 2048 samples before the gap
def test_a_shift_is_aligned_to_the_sample_by_the_samples_beside_the_gap(gap_start):
    from melrestore.correlate import align_shift

    mono = np.random.default_rng(1).standard_normal(40000).astype(np.float32)
    repeat = 20011  # the music around the gap comes again this many samples later
    first, last = max(0, gap_start - 2048), gap_start + 5000
    mono[first + repeat : last + repeat] = mono[first:last]
    start, end = gap_start, gap_start + 1000
    for rough in (repeat - 64, repeat + 37, repeat):  # anywhere within a hop of it
        assert align_shift(lambda lo, hi: mono[lo:hi], len(mono), start, end, rough, 64, 2048) == repeat
    # Too far off to reach it: the best lag within reach, never past it.
    assert abs(align_shift(lambda lo, hi: mono[lo:hi], len(mono), start, end, repeat + 200, 64, 2048) - (repeat + 200)) <= 64
