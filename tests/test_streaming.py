"""Bounded memory: files are read in pieces (detection in blocks, a window around each gap, search
features built block by block) and written by copying them with the fills patched in, and the
result is bit for bit what the whole file in memory gives."""

import tracemalloc

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import chord, loop, write
from melrestore import audio as audio_io
from melrestore.audio import AudioFile
from melrestore.batch import repair_file
from melrestore.container import copy_tags
from melrestore.frames import LazyFrames
from melrestore.gaps import row_runs_in_blocks, runs
from melrestore.mel import STFT_BLOCK_FRAMES, MelFrontend, MelSettings
from melrestore.pipeline import PipelineOptions, build_engine
from melrestore.plugins.detectors import DigitalSilence
from melrestore.search import RecordingIndex

RATE = 44100
BLOCK = 20_000  # forced small, so that gaps straddle block edges
# Gaps of every route: LSAR (10 ms), the Mel pipeline (25 ms), the similarity repair (60 ms, 120 ms,
# and 300 ms and 1 s with a second of clean music each side); several straddle a block edge, one ends
# right on one and one starts right on one.
GAPS = [(19_900, 20_341), (59_000, 60_100), (100_000, 105_292), (206_770, 220_000), (320_000, 364_100), (459_000, 461_646)]
LONG_GAPS = GAPS[3:5]


def _music(seconds: float = 16.0) -> np.ndarray:
    """Stereo music that repeats, with GAPS dropped out (the clean last seconds give the similarity repair a stretch to copy)."""
    mono = loop(seconds, RATE)[0]
    audio = np.stack([mono, 0.8 * np.roll(mono, 7)])
    for start, end in GAPS:
        audio[:, start:end] = 0.0
    return audio


def test_runs_are_the_true_spans_of_a_mask():
    def by_hand(mask):
        spans, start = [], None
        for i, on in enumerate([*mask, False]):
            if on and start is None:
                start = i
            elif not on and start is not None:
                spans.append((start, i))
                start = None
        return spans

    rng = np.random.default_rng(2)
    masks = [np.zeros(0, bool), np.ones(5, bool), np.zeros(5, bool)] + [rng.random(rng.integers(1, 60)) < 0.5 for _ in range(300)]
    for mask in masks:
        assert runs(mask) == by_hand(mask), mask
        assert runs(mask, 3) == [(a, b) for a, b in by_hand(mask) if b - a >= 3 or a == 0 or b == len(mask)], mask


def test_runs_of_several_rows_in_blocks_equal_each_rows_runs():
    rng = np.random.default_rng(1)
    masks = rng.random((3, 5000)) < [[0.5], [0.8], [0.95]]
    masks[1, :40] = masks[2, -40:] = True
    for block in (1, 7, 40, 999, 5000, 10_000):
        for min_length in (1, 5):
            found = [(row, s, e) for row, s, e in row_runs_in_blocks(masks, lambda b: b > 0, block, min_length) if e - s >= min_length]
            expected = [(row, s, e) for row in range(3) for s, e in runs(masks[row]) if e - s >= min_length]
            assert sorted(found) == sorted(expected), (block, min_length)


def test_a_long_signals_magnitude_in_blocks_equals_one_stft_call():
    """MelFrontend.stft_magnitude takes a long signal STFT_BLOCK_FRAMES frames at a time: the values
    are those of one torch.stft call over the whole signal, bit for bit, edges included."""
    frontend = MelFrontend(MelSettings(sample_rate=RATE))
    music = torch.from_numpy(_music(4.0))  # about 350 frames: a block and a part
    for audio in (music, music[:, None, 1001:], music[0, : STFT_BLOCK_FRAMES * 512]):
        assert frontend.settings.frames_for(audio.shape[-1]) > STFT_BLOCK_FRAMES
        blocks = frontend.stft_magnitude(audio)
        assert blocks.shape == (*audio.shape[:-1], 1025, frontend.settings.frames_for(audio.shape[-1]))
        assert np.array_equal(blocks.numpy(), np.abs(frontend.stft(audio).numpy()))


def test_detection_in_blocks_equals_whole_file_detection():
    audio = _music()
    whole = DigitalSilence(block_samples=audio.shape[1]).detect(audio, RATE)
    assert [(g.start, g.end) for g in whole] == GAPS
    for block in (BLOCK, 441, 20_341, 100_000):
        assert DigitalSilence(block_samples=block).detect(audio, RATE) == whole, block


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_24"), ("FLAC", "PCM_16"), ("OGG", "VORBIS"), ("MP3", "MPEG_LAYER_III")])
def test_a_file_read_on_demand_gives_the_samples_of_the_whole_file(tmp_path, fmt, subtype):
    path = write(tmp_path / f"x.{fmt.lower()}", _music(4.0), RATE, subtype, fmt)
    stored, _ = sf.read(path, dtype=audio_io.stored_dtype(subtype), always_2d=True)  # decoded in order
    whole = audio_io.to_float(stored)
    with AudioFile(path) as f:
        waveform = f.waveform
        assert waveform.shape == whole.shape
        for key in [(slice(None), slice(100, 5000)), (slice(None), slice(-300, None)), (0, slice(7, 9)),
                    (slice(None), 12345), (1, -1), (slice(None), slice(-10**9, 50)), (slice(None), slice(5000, 100))]:
            assert np.array_equal(waveform[key], whole[key]), key
        rng = np.random.default_rng(0)  # libsndfile's own seeking in Ogg and MP3 misses now and then
        for start, length in zip(rng.integers(0, whole.shape[1], 100), rng.integers(1, 5000, 100)):
            assert np.array_equal(waveform[:, start : start + length], whole[:, start : start + length]), (start, length)
        assert np.array_equal(np.asarray(waveform), whole)


def test_the_samples_a_file_keeps_are_the_file_s_whatever_the_cache_holds(tmp_path, monkeypatch):
    path = write(tmp_path / "x.wav", _music(4.0), RATE)
    whole = audio_io.read(path).samples
    for cache_bytes in (audio_io.CACHE_BYTES, 1):  # all of it kept, or one piece at a time
        monkeypatch.setattr(audio_io, "CACHE_BYTES", cache_bytes)
        with AudioFile(path) as f:
            first = f.read(60_000, 70_000)  # across two pieces
            first[:] = 0  # a caller writing to what it read (patches do) changes nothing kept
            for start, stop in [(60_000, 70_000), (0, 10), (65_530, 65_540), (0, f.frames), (f.frames, f.frames)]:
                assert np.array_equal(f.read(start, stop), whole[start:stop]), (cache_bytes, start, stop)


def test_the_search_index_built_in_blocks_finds_what_one_pass_finds(tmp_path):
    path = write(tmp_path / "x.wav", _music(), RATE)
    with AudioFile(path) as f:
        in_blocks = RecordingIndex(f.waveform, RATE, block_frames=37)
        one_pass = RecordingIndex(f.waveform[:, :], RATE)
        frames = one_pass.compact.shape[1]
        assert np.array_equal(in_blocks.compact.span(0, frames), one_pass.compact.span(0, frames))
        assert np.array_equal(in_blocks.bad_count, one_pass.bad_count)
        for start, end in LONG_GAPS:
            assert in_blocks.top_matches(start, end, k=4) == one_pass.top_matches(start, end, k=4)


def test_lazy_frames_give_the_same_values_in_any_order_of_reading():
    # Each block's values say which block computed them, as a long block's rounding would.
    def compute(first, last):
        return np.stack([np.arange(first, last) + 0.25 * first, -np.arange(first, last)]).astype(np.float32)

    frames, block = 103, 20  # the last block (83:103) overlaps the one before (80:100)
    forward = LazyFrames(2, frames, block, compute, flush_end=True)
    backward = LazyFrames(2, frames, block, compute, flush_end=True)
    for lo in reversed(range(0, frames, 7)):
        backward.span(lo, min(frames, lo + 9))
    whole = forward.span(0, frames)
    assert np.array_equal(backward.span(0, frames), whole)
    assert np.array_equal(whole[0, 83:], np.arange(83, 103) + 0.25 * 83)  # the last block's own values
    assert np.array_equal(whole[0, 80:83], np.arange(80, 83) + 0.25 * 80)
    assert forward.blocks_analysed == 6
    partial = LazyFrames(2, frames, block, compute, flush_end=True)
    assert partial.span(25, 45).shape == (2, 20) and partial.blocks_analysed == 2  # only the blocks it reaches
    with pytest.raises(ValueError):
        partial.span(0, 5)[0, 0] = 1.0  # read-only: a caller cannot change what is kept


def test_the_search_index_analyses_only_what_lies_within_its_radius_of_the_gap():
    audio = _music()
    start, end = LONG_GAPS[0]
    lazy = RecordingIndex(audio, RATE, block_frames=16, radius_s=2.0)
    whole = RecordingIndex(audio, RATE, block_frames=16, radius_s=2.0)
    frames = whole.compact.shape[1]
    whole.compact.span(0, frames)  # every block analysed before the search
    found = lazy.top_matches(start, end, k=4)
    assert found and found == whole.top_matches(start, end, k=4)
    reach = (end + 2 * RATE) // 512 + whole.context + 2  # frames up to the radius after the gap's context
    assert lazy.compact.blocks_analysed <= reach // 16 + 1 < -(-frames // 16) / 2


def _quick_engine(**options):
    """Every route, made cheap (few Griffin-Lim passes, few search candidates): the test is about
    what is read and written, not how good the fill is."""
    return build_engine(PipelineOptions(inpainter="interpolation", options={
        "griffin-lim": {"n_iter": 4}, "similarity": {"candidates": 4}, **options}))


def _repaired_whole(engine, path):
    """What the batch wrote before it read in pieces: the whole file in memory, the fills quantised into it."""
    audio = audio_io.read(path)
    waveform = audio.as_float()
    fills, results = engine.repair(waveform, audio.sample_rate, engine.detect(waveform, audio.sample_rate, path))
    for gap, fill in fills.items():
        audio.samples[gap.start : gap.end] = audio_io.quantise(fill, audio.subtype)
    return audio, [(r.start, r.end, r.status, r.method) for r in results]


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_16"), ("WAV", "PCM_24"), ("FLAC", "PCM_16")])
def test_the_output_written_in_pieces_is_bit_identical_to_the_whole_file_path(tmp_path, monkeypatch, fmt, subtype):
    src = write(tmp_path / f"in.{fmt.lower()}", _music(), RATE, subtype, fmt)
    whole, expected = _repaired_whole(_quick_engine(), src)
    monkeypatch.setattr(audio_io, "BLOCK_SAMPLES", BLOCK)  # read, searched and written in small blocks
    streaming = _quick_engine()
    out = tmp_path / f"out.{fmt.lower()}"
    report = repair_file(streaming, src, out)
    assert report.status == "repaired", report.message
    assert [(g["start"], g["end"], g["status"], g["method"]) for g in report.gaps] == expected
    assert {g["method"] for g in report.gaps} == {"short-gap", "mel", "long-gap"}
    assert np.array_equal(audio_io.read(out).samples, whole.samples)
    if fmt == "FLAC":  # encoded a block at a time, the file is byte for byte the one written in one call
        sf.write(tmp_path / "whole.flac", whole.samples, RATE, subtype=subtype)
        copy_tags(src, tmp_path / "whole.flac")
        assert out.read_bytes() == (tmp_path / "whole.flac").read_bytes()


def test_memory_stays_far_below_the_decoded_file(tmp_path, monkeypatch):
    """Three minutes of stereo audio, with gaps and without, read in small blocks: what numpy holds at
    the peak (tracemalloc sees numpy's buffers) is a small part of the decoded file, which the whole
    file in memory held twice over.  (The similarity search keeps 1/16 of it, its compact features;
    the retrieval's correlations span at most its radius, 300 s each way, about a third of this
    file's decoded size here and no more on a longer one; benchmarks/memory.py measures the whole
    pipeline on long files.)"""
    seconds = 180
    audio = _music(seconds)
    damaged = write(tmp_path / "damaged.wav", audio, RATE)
    clean = write(tmp_path / "clean.wav", chord(seconds, RATE, channels=2), RATE)
    decoded_bytes = audio.size * 4  # float32, as the engine works on it
    del audio
    monkeypatch.setattr(audio_io, "BLOCK_SAMPLES", 1 << 16)
    monkeypatch.setattr(audio_io, "CACHE_BYTES", 1 << 20)  # a fixed 32 MB by default: more than this short file's share
    engine = build_engine(PipelineOptions(inpainter="interpolation", long_gap_ms=0))
    for source, status, share in ((damaged, "repaired", 2), (clean, "unchanged", 8)):
        tracemalloc.start()
        try:
            report = repair_file(engine, source, tmp_path / f"out-{source.name}")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert report.status == status, report.message
        assert len(report.gaps) == (len(GAPS) if status == "repaired" else 0)
        assert peak < decoded_bytes / share, f"{source.name}: peak {peak / 1e6:.1f} MB for {decoded_bytes / 1e6:.0f} MB decoded"
