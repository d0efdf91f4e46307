import json
from dataclasses import asdict

import numpy as np
import pytest
import soundfile as sf

from conftest import chord, loop, music_excerpt, write
from melrestore import audio as audio_io
from melrestore.batch import repair_file
from melrestore.gaps import Gap, mask_of
from melrestore.reports import human_summary, summary_of


def _dominant_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)), n=1 << 16))
    return float(np.argmax(spectrum) * rate / (1 << 16))


@pytest.mark.parametrize("rate", [22050, 44100, 48000, 96000])
@pytest.mark.parametrize("channels", [1, 2, 4])
def test_only_the_gap_changes_at_any_rate_and_channel_count(tmp_path, interp_engine, rate, channels):
    clean = chord(2.0, rate, channels)
    damaged = clean.copy()
    gap = slice(int(0.9 * rate), int(1.1 * rate))
    damaged[:, gap] = 0.0
    src = write(tmp_path / "in.wav", damaged, rate)
    report = repair_file(interp_engine, src, tmp_path / "out.wav")
    assert report.status == "repaired", report.message

    before = audio_io.read(src)
    after = audio_io.read(tmp_path / "out.wav")
    assert (after.sample_rate, after.channels, after.subtype) == (rate, channels, "PCM_16")
    outside = np.ones(before.frames, dtype=bool)
    outside[gap] = False
    assert np.array_equal(before.samples[outside], after.samples[outside])
    filled = after.as_float()[:, gap]
    assert np.sqrt(np.mean(filled**2)) > 0.3 * np.sqrt(np.mean(clean[:, gap] ** 2))


@pytest.mark.parametrize("subtype,ext", [("PCM_24", "flac"), ("FLOAT", "wav"), ("PCM_16", "aiff")])
def test_bit_depth_and_format_are_kept_bit_exact(tmp_path, interp_engine, subtype, ext):
    rate = 44100
    damaged = chord(1.5, rate, 2)
    damaged[:, 30000:32000] = 0.0
    src = write(tmp_path / f"in.{ext}", damaged, rate, subtype=subtype)
    assert repair_file(interp_engine, src, tmp_path / f"out.{ext}").status == "repaired"
    before, after = audio_io.read(src), audio_io.read(tmp_path / f"out.{ext}")
    assert (after.format, after.subtype) == (before.format, before.subtype)
    assert np.array_equal(before.samples[:30000], after.samples[:30000])
    assert np.array_equal(before.samples[32000:], after.samples[32000:])
    # The fill written is the engine's, at the file's own precision: a 24-bit file's rounded to 24
    # bits (not 16), a float file's as the engine gave it.  (PCM is read as int32, left-justified.)
    gaps = interp_engine.detect(before.as_float(), rate, src)
    assert [(g.start, g.end) for g in gaps] == [(30000, 32000)]
    fill = interp_engine.repair(before.as_float(), rate, gaps)[0][gaps[0]].T
    if subtype == "FLOAT":
        expected = fill.astype(np.float32)
    else:
        bits = audio_io.PCM_BITS[subtype]
        top = 2 ** (bits - 1)
        stored = np.clip(np.round(np.clip(fill.astype(np.float64), -1, 1) * top), -top, top - 1).astype(np.int64)
        expected = (stored * 2 ** (32 - bits)).astype(np.int32)
    assert np.abs(expected).max() > 0
    assert np.array_equal(after.samples[30000:32000], expected)


def test_fill_continues_the_music(interp_engine):
    rate = 44100
    clean = chord(3.0, rate, 1, freqs=(440.0,))
    damaged = clean.copy()
    damaged[:, 60000:66000] = 0.0
    fills, results = interp_engine.repair(damaged, rate, [Gap(60000, 66000)])
    fill = fills[Gap(60000, 66000)][0]
    assert results[0].status == "repaired"
    # Within one Mel band (about 31 Hz wide around 440 Hz): the Mel window is all the vocoder gets.
    assert abs(_dominant_hz(fill, rate) - 440.0) < 16.0
    assert 0.5 < np.sqrt(np.mean(fill**2)) / np.sqrt(np.mean(clean[0, 60000:66000] ** 2)) < 1.5


@pytest.mark.parametrize("inpainter, gap_ms", [("interpolation", 1000), ("unet-onnx", 200), ("unet-onnx", 1000)])
def test_a_mel_fill_keeps_the_music_s_dc_offset(inpainter, gap_ms):
    """A chord riding on +0.3 in one channel and -0.2 in the other: the Mel fill rides on it too (it
    used to centre on zero between its pinned ends, a dip of the offset's size inside the gap)."""
    from melrestore.pipeline import PipelineOptions, build_engine

    engine = build_engine(PipelineOptions(inpainter=inpainter, short_gap_ms=0, long_gap_ms=0))
    rate = 44100
    offset = np.array([[0.3], [-0.2]], dtype=np.float32)
    clean = chord(6.0, rate, 2) + offset
    a, b = rate * 2, rate * 2 + gap_ms * rate // 1000
    damaged = clean.copy()
    damaged[:, a:b] = 0.0
    fills, results = engine.repair(damaged, rate, [Gap(a, b)])
    assert results[0].method == "mel"
    fill = fills[Gap(a, b)]
    assert np.abs(fill.mean(axis=1) - offset[:, 0]).max() < 0.01
    assert np.sqrt(np.mean((fill - offset) ** 2)) < 1.5 * np.sqrt(np.mean((clean - offset) ** 2))


@pytest.mark.parametrize("method, gap_ms", [("short-gap", 10), ("long-gap", 200), ("mel", 200), ("mel", 1000)])
def test_music_on_a_dc_offset_gets_the_same_fill_moved_by_it(method, gap_ms):
    """LSAR's model, the copy's loudness match, the extrapolated edges and the Mel path all take the
    music around its offset: the example clip on +0.3 is filled as the clip is, plus 0.3 (LSAR's
    fill was 6 % off, a 1 s Mel fill 15 %)."""
    from melrestore.pipeline import PipelineOptions, build_engine

    engine = build_engine(PipelineOptions(inpainter="interpolation", long_gap_ms=0 if method == "mel" else 30))
    music, rate = music_excerpt()
    gap = Gap(2 * rate, 2 * rate + gap_ms * rate // 1000)
    fills = []
    for offset in (0.0, 0.3):
        damaged = 0.6 * music + offset
        damaged[:, gap.start : gap.end] = 0.0
        filled, results = engine.repair(damaged, rate, [gap])
        assert results[0].method == method
        fills.append(filled[gap] - offset)
    assert np.sqrt(np.mean((fills[1] - fills[0]) ** 2)) < 0.002 * np.sqrt(np.mean(fills[0] ** 2))


def _local_step(audio: np.ndarray, at: int) -> float:
    """The music's own sample-to-sample step around sample ``at`` (99th percentile over 128 samples)."""
    return float(np.percentile(np.abs(np.diff(audio[:, at - 64 : at + 64], axis=1)), 99))


@pytest.mark.parametrize("rate", [44100, 48000, 22050, 96000])
@pytest.mark.parametrize("at_seconds", [1.1, 1.44])
def test_splice_has_no_jump_and_no_overshoot(interp_engine, rate, at_seconds):
    """The example clip at each rate, a 200 ms gap at two places where Griffin-Lim's fill used to
    jump at its edges (steps 2 to 25 times the music's own) and, after resampling, overshoot full scale."""
    from melrestore.mel import resample

    clip, clip_rate = music_excerpt()
    audio = resample(clip[:, : 3 * clip_rate], clip_rate, rate)
    a = int(at_seconds * rate)
    b = a + rate // 5
    damaged = audio.copy()
    damaged[:, a:b] = 0.0
    fill = interp_engine.repair(damaged, rate, [Gap(a, b)])[0][Gap(a, b)]
    assert np.abs(fill[:, 0] - audio[:, a - 1]).max() < 3 * _local_step(audio, a)
    assert np.abs(fill[:, -1] - audio[:, b]).max() < 3 * _local_step(audio, b)
    around = np.concatenate([audio[:, a - rate // 2 : a], audio[:, b : b + rate // 2]], axis=1)
    assert np.abs(fill).max() <= min(1.0, np.abs(around).max())


def test_gaps_at_file_edges_and_close_together(interp_engine):
    rate = 44100
    clean = chord(2.0, rate, 2)
    damaged = clean.copy()
    gaps = [Gap(100, 2000), Gap(40000, 42000), Gap(43000, 45000), Gap(88000, 88100)]
    for g in gaps:
        damaged[:, g.start : g.end] = 0.0
    fills, results = interp_engine.repair(damaged, rate, gaps)
    assert [r.status for r in results] == ["repaired"] * 4
    for g in gaps:
        assert fills[g].shape == (2, g.length)
        assert np.sqrt(np.mean(fills[g] ** 2)) > 0.3 * np.sqrt(np.mean(clean[:, g.start : g.end] ** 2))


def test_too_long_gap_is_reported_and_left_alone(tmp_path, interp_engine):
    rate = 22050
    damaged = chord(8.0, rate, 1)
    damaged[:, rate : 5 * rate] = 0.0
    src = write(tmp_path / "long.wav", damaged, rate)
    report = repair_file(interp_engine, src, tmp_path / "out.wav")
    assert report.gaps[0]["status"] == report.gaps[0]["method"] == "skipped"  # no method filled it
    assert "longer than" in report.gaps[0]["message"]
    assert report.status == "unchanged"
    assert (tmp_path / "out.wav").read_bytes() == src.read_bytes()
    summary = human_summary({"summary": summary_of([report], 1.0), "files": [asdict(report)]})
    assert "1 file: 0 repaired, 1 copied unchanged, 0 failed" in summary  # not "without gaps": it has one
    assert "skipped" in summary and "gap of 4.00 s is longer than the 3 s" in summary


@pytest.mark.parametrize("offset", [0.0, 0.3])  # LSAR's model is fitted to the music around its DC offset
def test_short_gaps_go_to_lsar_and_recover_the_waveform(interp_engine, offset):
    rate = 44100
    clean = chord(2.0, rate, 2) + offset
    damaged = clean.copy()
    short, long = Gap(30000, 30220), Gap(60000, 66000)  # 5 ms and 136 ms
    for g in (short, long):
        damaged[:, g.start : g.end] = 0.0
    fills, results = interp_engine.repair(damaged, rate, [short, long])
    assert [r.method for r in results] == ["short-gap", "mel"]
    truth = clean[:, short.start : short.end]
    snr = 10 * np.log10(np.sum((truth - offset) ** 2) / np.sum((truth - fills[short]) ** 2))
    assert snr > 30  # a sum of sines is exactly autoregressive: LSAR finds the waveform itself


def test_a_dropout_of_one_channel_is_predicted_with_its_own_dc_offset(interp_engine):
    """The channels ride on different offsets (+0.3 and -0.2): a filter of the other channel alone
    cannot give the missing one its own, so the fit has a constant term too."""
    rate = 44100
    offset = np.array([[0.3], [-0.2]], dtype=np.float32)
    clean = chord(4.0, rate, 2) + offset
    fill, truth = _predicted_channel(interp_engine, clean, rate, Gap(rate, rate + rate // 2, "channel 1", (0,)))
    assert 10 * np.log10(np.sum((truth - 0.3) ** 2) / np.sum((truth - fill) ** 2)) > 15


def _predicted_channel(engine, clean: np.ndarray, rate: int, gap: Gap) -> tuple[np.ndarray, np.ndarray]:
    """``gap`` (of one channel) punched into ``clean`` and filled from the other channel: the fill
    of that channel and the truth."""
    (channel,) = gap.channels
    damaged = clean.copy()
    damaged[channel, gap.start : gap.end] = 0.0
    fills, results = engine.repair(damaged, rate, [gap])
    assert results[0].method == "other-channels"
    return fills[gap][channel], clean[channel, gap.start : gap.end]


@pytest.mark.parametrize("level_db, offset", [(0, 0.0), (-40, 0.0), (-60, 0.0), (-40, 0.5)])
def test_a_dropout_of_one_channel_in_quiet_music_is_predicted_as_well_as_in_loud(interp_engine, level_db, offset):
    """The constant term must not weigh on the fit: its regularisation is the taps' energy alone, about
    their mean (taken from every column, or with a DC offset in it, it grew as the music got quieter:
    a -40 dB tone's channel was refused)."""
    rate = 44100
    rng = np.random.default_rng(0)
    left = 10 ** (level_db / 20) * (0.5 * chord(2.0, rate, 1)[0] + 0.003 * rng.standard_normal(2 * rate).astype(np.float32))
    clean = np.stack([left, 0.8 * left]) + offset
    fill, truth = _predicted_channel(interp_engine, clean, rate, Gap(rate, rate + rate // 20, "channel 2", (1,)))
    assert np.sqrt(np.mean((fill - truth) ** 2)) < 1e-3 * np.sqrt(np.mean((truth - offset) ** 2))


def test_a_dropout_of_one_channel_is_predicted_from_the_other_where_they_share_the_music(interp_engine):
    music, rate = music_excerpt()  # a stereo mix: the channels share most of it
    damaged = music.copy()
    gap = Gap(44100, 56000, "channel 1", (0,))
    damaged[0, gap.start : gap.end] = 0.0
    fills, results = interp_engine.repair(damaged, rate, [gap])
    assert results[0].method == "other-channels"
    truth = music[0, gap.start : gap.end]
    assert 10 * np.log10(np.sum(truth**2) / np.sum((truth - fills[gap][0]) ** 2)) > 15
    spliced = damaged.copy()
    interp_engine.splice(spliced, fills)
    assert np.array_equal(spliced[1], damaged[1])  # the channel that played on is untouched


def test_a_dropout_of_one_channel_the_other_does_not_explain_goes_to_the_mel_pipeline(interp_engine):
    rate = 44100
    left, right = chord(2.0, rate, 1)[0], chord(2.0, rate, 1, freqs=(196.0, 246.9, 293.7))[0]  # G major beside A major
    damaged = np.stack([left, right])
    gap = Gap(40000, 48000, "channel 2", (1,))
    damaged[1, gap.start : gap.end] = 0.0
    fills, results = interp_engine.repair(damaged, rate, [gap])
    assert (results[0].status, results[0].method) == ("repaired", "mel")
    assert np.sqrt(np.mean(fills[gap][1] ** 2)) > 0.3 * np.sqrt(np.mean(right[gap.start : gap.end] ** 2))


def test_fills_of_touching_gaps_meet_each_other_or_the_music_and_a_missing_fill_is_left_be():
    from melrestore.splice import meet_at_seams

    audio = np.zeros((2, 40), dtype=np.float32)
    audio[1, :20] = 0.01 * np.arange(20)  # channel 2 plays up to the seam
    first, then = Gap(10, 20, "", (0,)), Gap(20, 30)
    a, b = np.full((2, 10), 0.5, np.float32), np.full((2, 10), -0.5, np.float32)
    met = meet_at_seams(audio, [first, then], {first: a, then: b})
    assert met[first][0, -1] == met[then][0, 0] == 0.0  # channel 1: both filled, they meet in the middle
    assert met[then][1, 0] == pytest.approx(0.2)  # channel 2: the second fill carries on the music's line (0.18, 0.19)
    assert np.array_equal(met[first][1], a[1])  # not the first gap's channel
    alone = meet_at_seams(audio, [first, then], {then: b})  # the first gap failed: nothing to meet in channel 1
    assert np.array_equal(alone[then][0], b[0]) and alone[then][1, 0] == pytest.approx(0.2)
    assert meet_at_seams(audio, [first, then], {first: a})[first] is a


def test_a_dropout_of_one_channel_longer_than_the_pipeline_fills_is_left_alone(interp_engine):
    rate = 44100
    damaged = chord(6.0, rate, 2)
    gap = Gap(rate, 5 * rate, "channel 1", (0,))  # 4 s: the other channel would predict it, but no gap that long is filled
    damaged[0, gap.start : gap.end] = 0.0
    fills, results = interp_engine.repair(damaged, rate, [gap])
    assert fills == {} and results[0].status == "skipped" and "longer than" in results[0].message


@pytest.mark.parametrize("samples, method", [
    (87, None),  # under the detector's 2 ms (88.2 samples at 44.1 kHz, rounded to 88): no gap
    (88, "short-gap"),  # exactly the minimum: a gap
    (882, "short-gap"),  # exactly short_gap_ms (20 ms): still LSAR's
    (883, "mel"),
    (1322, "mel"),
    (1323, "long-gap"),  # exactly long_gap_ms (30 ms): copied from a matching stretch from there on
])
def test_gap_lengths_at_the_limits_are_found_and_routed_inclusively(interp_engine, samples, method):
    from melrestore.plugins.detectors import DigitalSilence

    music, rate = music_excerpt()
    assert rate == 44100
    start = 2 * rate
    music[:, start : start + samples] = 0.0
    gaps = DigitalSilence().detect(music, rate)
    if method is None:
        assert gaps == []
        return
    assert [(g.start, g.end) for g in gaps] == [(start, start + samples)]
    _, results = interp_engine.repair(music, rate, gaps)
    assert (results[0].status, results[0].method) == ("repaired", method), results[0].message


def test_lsar_at_the_very_start_falls_back_to_the_mel_pipeline(interp_engine):
    rate = 44100
    damaged = chord(1.0, rate, 1)
    damaged[:, 2:200] = 0.0
    fills, results = interp_engine.repair(damaged, rate, [Gap(2, 200)])
    assert results[0].status == "repaired" and results[0].method == "mel"


@pytest.mark.parametrize("gap_s", [0.05, 0.4])  # the default pipeline copies from 30 ms on
@pytest.mark.parametrize("step", [0.0, 0.3])
def test_gaps_in_repetitive_music_are_copied_from_a_matching_stretch(gap_s, step):
    """Also where the DC offset steps by 0.3 (takes edited together) 0.1 s after the gap: the copy
    of an exact repeat is exact whatever the offsets (scaled about each place's offset, it was not)."""
    from melrestore.pipeline import PipelineOptions, build_engine

    rate = 22050
    clean = loop(12.0, rate)
    clean[:, 5 * rate + 1234 + int(gap_s * rate) + rate // 10 :] += step
    damaged = clean.copy()
    gap = Gap(5 * rate + 1234, 5 * rate + 1234 + int(gap_s * rate))
    damaged[:, gap.start : gap.end] = 0.0
    engine = build_engine(PipelineOptions(inpainter="interpolation"))
    fills, results = engine.repair(damaged, rate, [gap])
    assert results[0].method == "long-gap"
    truth = clean[:, gap.start : gap.end]
    assert 10 * np.log10(np.sum(truth**2) / (np.sum((truth - fills[gap]) ** 2) + 1e-12)) > 20


def test_similarity_declines_when_nothing_repeats():
    from melrestore.pipeline import PipelineOptions, build_engine

    rate = 22050
    rng = np.random.default_rng(3)
    t = np.arange(12 * rate) / rate
    sweep = (0.3 * np.sin(2 * np.pi * (100 * t + 40 * t**2)) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)[None]
    damaged = sweep.copy()
    gap = Gap(6 * rate, 6 * rate + rate // 2)
    damaged[:, gap.start : gap.end] = 0.0
    _, results = build_engine(PipelineOptions(inpainter="interpolation")).repair(damaged, rate, [gap])
    assert results[0].status == "repaired" and results[0].method == "mel"


def test_a_window_marks_every_gap_in_it_missing_and_knows_which_is_its_own(interp_engine):
    rate = 48000  # resampled to the analysis rate: the margins count too
    damaged = chord(3.0, rate, 2)
    own, other = Gap(60000, 62000), Gap(68000, 69000)
    for g in (own, other):
        damaged[:, g.start : g.end] = 0.0
    w = interp_engine.analyse(damaged, rate, own, [own, other], interp_engine.choose(own, rate).window_frames)
    s = interp_engine.settings
    frames = np.arange(len(w.gap_frames)) * s.hop_length  # each frame's centre, in segment samples
    ratio = s.sample_rate / rate
    own_lo, own_hi = (own.start - w.file_start) * ratio, (own.end - w.file_start) * ratio
    reaches_own = (frames + s.n_fft // 2 > own_lo - 8) & (frames - s.n_fft // 2 < own_hi + 8)
    assert np.array_equal(w.gap_frames, reaches_own)
    assert (w.missing_frames & ~w.gap_frames).any() and not (w.gap_frames & ~w.missing_frames).any()


def test_the_stages_run_one_by_one_give_what_repair_gives(interp_engine):
    rate = 44100
    clean = chord(2.0, rate, 2)
    damaged = clean.copy()
    damaged[:, 40000:41100] = 0.0  # 25 ms: above the short gaps, below the long ones: the Mel pipeline's
    gaps = interp_engine.detect(damaged, rate)
    assert gaps == [Gap(40000, 41100, "digital silence")]
    plan = interp_engine.choose(gaps[0], rate)
    assert plan.method == "mel" and plan.window_frames and not plan.reason
    window = interp_engine.analyse(damaged, rate, gaps[0], gaps, plan.window_frames)
    interp_engine.retrieve([window], damaged, interp_engine.recording_features(damaged, rate, gaps))
    assert window.reference is not None  # a chord matches itself everywhere: the vocoder gets a stretch
    interp_engine.inpaint([window])
    fill = interp_engine.vocode(window)
    fills, results = interp_engine.repair(damaged, rate, gaps)
    assert results[0].status == "repaired" and np.array_equal(fill, fills[gaps[0]])
    repaired = damaged.copy()
    interp_engine.splice(repaired, fills)
    assert np.array_equal(repaired[:, 40000:41100], fill)
    assert np.array_equal(np.delete(repaired, np.s_[40000:41100], axis=1), np.delete(damaged, np.s_[40000:41100], axis=1))
    # A gap longer than the pipeline fills is planned as skipped, with the reason detect prints.
    too_long = interp_engine.choose(Gap(0, 4 * rate), rate)
    assert too_long.method == "skipped" and too_long.window_frames is None and "longer than the 3 s" in too_long.reason
    assert too_long.as_found().status == "skipped" and too_long.as_found().message == too_long.reason


def test_a_3_s_dropout_that_runs_on_into_zero_samples_of_the_music_is_still_filled():
    """A run of zeros can run on into music samples that happen to be zero (as 16-bit music has):
    a 3 s dropout found a few samples longer is still the pipeline's to fill, with the shipped U-Net."""
    from melrestore.pipeline import PipelineOptions, build_engine

    rate = 44100
    audio = loop(12.0, rate)
    start = 4 * rate
    gap = Gap(start, start + 3 * rate + 5)
    audio[:, gap.start : gap.end] = 0.0
    engine = build_engine(PipelineOptions(long_gap_ms=0))
    assert engine.choose(gap, rate).method == "mel"
    fills, results = engine.repair(audio, rate, [gap])
    assert results[0].status == "repaired" and np.isfinite(fills[gap]).all() and np.abs(fills[gap]).max() > 0.01
    assert engine.choose(Gap(start, start + int(3.02 * rate)), rate).method == "skipped"


def test_repair_reports_its_progress_gap_by_gap(interp_engine):
    """Gaps done by LSAR, left alone (too long) and by the Mel pipeline all count, each once, in order."""
    rate = 22050
    damaged = chord(6.0, rate, 1)
    gaps = [Gap(11025, 11135), Gap(int(1.5 * rate), int(1.5 * rate) + 1000), Gap(2 * rate, int(5.5 * rate))]  # 5 ms, 45 ms, 3.5 s
    for g in gaps:
        damaged[:, g.start : g.end] = 0.0
    calls = []
    _, results = interp_engine.repair(damaged, rate, gaps, progress=lambda done, total: calls.append((done, total)))
    assert [(r.status, r.method) for r in results][:2] == [("repaired", "short-gap"), ("repaired", "mel")] and results[2].status == "skipped"
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert interp_engine.repair(damaged, rate, [], progress=lambda *a: calls.append(a)) == ({}, []) and len(calls) == 4


def test_windows_a_failing_inpainter_fails_count_as_done():
    from melrestore.engine import Engine
    from melrestore.mel import MelSettings
    from melrestore.plugins.griffinlim import ConstrainedGriffinLim
    from melrestore.plugins.interpolation import Interpolation

    class Fails(Interpolation):
        def inpaint(self, log_mel, missing, **retrieved):
            raise RuntimeError("out of memory")

    rate = 22050
    damaged = chord(3.0, rate, 1)
    gaps = [Gap(a, a + 1000) for a in (rate // 2, rate, 2 * rate)]
    for g in gaps:
        damaged[:, g.start : g.end] = 0.0
    calls = []
    engine = Engine(Fails(), ConstrainedGriffinLim(), MelSettings())
    _, results = engine.repair(damaged, rate, gaps, progress=lambda done, total: calls.append((done, total)))
    assert [r.status for r in results] == ["failed"] * 3
    assert calls == [(0, 3), (3, 3)]


def test_the_python_example_in_the_readme_runs(tmp_path, monkeypatch):
    from conftest import EXAMPLES, ROOT

    readme = (ROOT / "README.md").read_text()
    block = readme.split("## From Python", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples").symlink_to(EXAMPLES)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    expected = [tuple(g) for g in json.loads((EXAMPLES / "gaps.json").read_text())["mutilated-mime-a.wav"]["gaps"]]
    assert namespace["report"].status == "repaired" and (tmp_path / "fixed.wav").exists()
    assert [(g.start, g.end) for g in namespace["gaps"]] == expected
    assert [r.status for r in namespace["results"]] == ["repaired"] * len(expected)
    damaged = sf.read(EXAMPLES / "recordings" / "mutilated-mime-a.wav", dtype="float32", always_2d=True)[0].T
    repaired = namespace["audio"]
    outside = ~mask_of([Gap(a, b) for a, b in expected], repaired.shape[1])
    assert np.array_equal(repaired[:, outside], damaged[:, outside])
    assert all(np.abs(repaired[:, a:b]).max() > 0.01 for a, b in expected)


def test_the_offset_around_a_gap_leaves_other_dropouts_out():
    """Dense dropouts (5 ms of every 30) in music on +0.5: their zeros are no samples of the offset
    (counted, they gave 0.44, and LSAR's fills were made around that)."""
    from melrestore.splice import offset_around

    music, rate = music_excerpt()
    audio = 0.3 * music[:, rate : 4 * rate] + 0.5
    for start in range(30000, 100000, 1323):
        audio[:, start : start + 220] = 0.0
    assert np.abs(offset_around(audio, 60000, 60220, rate) - 0.5).max() < 0.01


def test_the_front_end_sets_the_rate_an_inpainter_without_its_own_analyses_at():
    """``--frontend seed-22k`` analyses at 22,050 Hz: the fill of a gap in white noise at 44.1 kHz has
    nothing above 11 kHz; with ``music-44k`` it has the noise's whole band."""
    from melrestore.pipeline import PipelineOptions, build_engine

    rate = 44100
    noise = np.random.default_rng(0).normal(0, 0.1, (1, 3 * rate)).astype(np.float32)
    gap = Gap(rate, rate + rate // 5)
    damaged = noise.copy()
    damaged[:, gap.start : gap.end] = 0.0
    high = {}
    for frontend in ("music-44k", "seed-22k"):
        engine = build_engine(PipelineOptions(inpainter="interpolation", frontend=frontend, short_gap_ms=0, long_gap_ms=0))
        fill = engine.repair(damaged, rate, [gap])[0][gap][0]
        spectrum = np.abs(np.fft.rfft(fill)) ** 2
        high[frontend] = spectrum[np.fft.rfftfreq(len(fill), 1 / rate) > 12000].sum() / spectrum.sum()
    assert high["music-44k"] > 0.3 and high["seed-22k"] < 0.01, high


def test_a_files_scan_for_gaps_reports_how_far_it_has_read_before_its_gaps_are_filled(tmp_path):
    """A long file's detection reads it all before the first gap is filled: ``scanned`` follows it."""
    from melrestore.pipeline import PipelineOptions, build_engine

    rate = 44100
    audio = chord(3.0, rate, 2)
    audio[:, rate : rate + rate // 10] = 0.0
    src = write(tmp_path / "a.wav", audio, rate)
    engine = build_engine(PipelineOptions(inpainter="interpolation", options={"digital-silence": {"block_samples": 20000}}))
    events = []
    report = repair_file(engine, src, tmp_path / "out.wav", scanned=lambda share: events.append(("scan", share)),
                         progress=lambda done, total: events.append(("gaps", done / total)))
    assert report.status == "repaired"
    scans = [share for kind, share in events if kind == "scan"]
    assert len(scans) >= 6 and scans == sorted(set(scans)) and scans[-1] == 1.0  # block by block, never back
    assert [kind for kind, _ in events] == ["scan"] * len(scans) + ["gaps"] * (len(events) - len(scans))
    assert events[-1] == ("gaps", 1.0)
