"""Retrieval: the learned inpainter's view of the rest of the recording."""

import numpy as np

from conftest import chord
from melrestore import networks
from melrestore.engine import REFERENCE_MAX_DIRTY, Engine
from melrestore.evaluate import TrueMelEngine
from melrestore.gaps import Gap
from melrestore.mel import MelFrontend, MelSettings, resample
from melrestore.registry import get_registry
from melrestore.retrieval import RecordingFeatures, find_references
from melrestore.training import WindowSampler

SETTINGS = MelSettings(sample_rate=8000, n_fft=256, hop_length=64, n_mels=32)
PHRASE_S = 1.5


def phrase_song(repeats: int, rate: int, seed: int = 0) -> np.ndarray:
    """A 1.5 s phrase of three chords, repeated, with a different chord between repeats
    (so only whole repeats match), ``[1, samples]``."""
    rng = np.random.default_rng(seed)
    phrase = np.concatenate([chord(0.5, rate, freqs=(f, f * 1.25, f * 1.5)) for f in (196.0, 262.0, 330.0)], axis=1)
    noise = lambda n: 0.001 * rng.standard_normal((1, n)).astype(np.float32)  # noqa: E731
    pieces = []
    for _ in range(repeats):
        pieces += [phrase + noise(phrase.shape[1]), chord(0.25, rate, freqs=(rng.uniform(150, 400),)) * 0.5]
    return np.concatenate(pieces, axis=1)


def _window(first_frame: int, frames: int, gap_frames: slice) -> tuple[int, np.ndarray]:
    """A window's first sample and its known frames."""
    known = np.ones(frames, dtype=bool)
    known[gap_frames] = False
    return first_frame * SETTINGS.hop_length, known


def test_search_finds_the_repeat_and_never_the_window_itself():
    frontend = MelFrontend(SETTINGS)
    song = phrase_song(6, 8000)[0]
    recording = RecordingFeatures.of_samples(song, frontend)
    period = int((PHRASE_S + 0.25) * 8000)
    start, known = _window(first_frame=3 * period // 64, frames=128, gap_frames=slice(40, 88))
    found = find_references(recording, start, 128, known, count=2)
    assert len(found) == 2
    for ref in found:
        assert abs(ref.offset) >= 128 * 64  # never overlaps the window it serves
        # A whole number of repeats away, to within one hop.
        assert min(abs(ref.offset - k * period) for k in range(-3, 4) if k) <= 64
        assert ref.quality > 0.3
    # A recording of noise has no good match: the quality says so.
    noise = np.random.default_rng(1).standard_normal(len(song)).astype(np.float32) * 0.1
    unrelated = find_references(RecordingFeatures.of_samples(noise, frontend), start, 128, known, count=1)
    assert unrelated and unrelated[0].quality < found[0].quality / 2


def test_the_search_stays_within_its_radius():
    frontend = MelFrontend(SETTINGS)
    song = phrase_song(8, 8000)[0]
    period = int((PHRASE_S + 0.25) * 8000)
    start, known = _window(first_frame=6 * period // 64, frames=128, gap_frames=slice(40, 88))
    everywhere = find_references(RecordingFeatures.of_samples(song, frontend), start, 128, known, count=4)
    assert max(abs(ref.offset) for ref in everywhere) > 2.5 * period  # repeats further away are as good
    radius_s = 2.2 * period / 8000
    found = find_references(RecordingFeatures.of_samples(song, frontend, radius_s=radius_s), start, 128, known, count=4)
    assert found and all(abs(ref.offset) <= radius_s * 8000 for ref in found)
    assert min(abs(found[0].offset - k * period) for k in (-2, -1, 1, 2)) <= 64  # still a whole repeat away


def test_a_search_analyses_only_what_lies_within_its_radius_and_finds_what_a_full_analysis_finds():
    frontend = MelFrontend(SETTINGS)
    song = phrase_song(8, 8000)[0]
    period = int((PHRASE_S + 0.25) * 8000)
    start, known = _window(first_frame=period // 64, frames=128, gap_frames=slice(40, 88))
    radius_s = 2.2 * period / 8000
    lazy = RecordingFeatures.of_samples(song, frontend, radius_s=radius_s, block_frames=16)
    whole = RecordingFeatures.of_samples(song, frontend, radius_s=radius_s, block_frames=16)
    whole.features.span(0, whole.frames)  # every block analysed before the search
    found = find_references(lazy, start, 128, known, count=4)
    assert found == find_references(whole, start, 128, known, count=4)
    reach = (start // 64 + 128 + whole.radius) // 16 + 1  # the blocks up to the radius after the window
    assert lazy.features.blocks_analysed <= reach < -(-whole.frames // 16) / 2


def test_other_gaps_only_rule_out_a_candidate_where_it_would_be_copied():
    frontend = MelFrontend(SETTINGS)
    song = phrase_song(4, 8000)[0]
    period = int((PHRASE_S + 0.25) * 8000)
    start, known = _window(first_frame=2 * period // 64, frames=128, gap_frames=slice(40, 88))
    gap_start = start + 40 * 64
    # Other dropouts: in the context of both repeats before (their copy regions stay clean), and
    # right where the repeat after would be copied from.
    avoid = [(gap_start - k * period - 20 * 64, gap_start - k * period - 16 * 64) for k in (1, 2)]
    avoid.append((gap_start + period + 1000, gap_start + period + 2000))
    recording = RecordingFeatures(lambda lo, hi: np.pad(song, (max(0, -lo), max(0, hi - len(song))))[max(lo, 0) : max(lo, 0) + hi - lo],
                                  len(song), frontend, avoid)
    found = find_references(recording, start, 128, known, count=3)
    repeats = round(found[0].offset / period)
    assert repeats in (-1, -2) and abs(found[0].offset - repeats * period) <= 64  # a clean repeat, found anyway
    for ref in found:  # no reference offers samples that are themselves missing
        copied = (gap_start + ref.offset - SETTINGS.n_fft, gap_start + ref.offset + 48 * 64 + SETTINGS.n_fft)
        assert copied[1] <= avoid[2][0] or copied[0] >= avoid[2][1]


def test_a_stretch_need_only_be_clean_where_the_windows_own_gap_is():
    """A window holding two gaps, its own and another: the only repeat of the music has a dropout
    of its own where the window's *other* gap is.  It is still the reference for the window's gap
    (``needed``, as the engine passes it), and only the stricter default (clean wherever the window
    is unknown) turns it down."""
    frontend = MelFrontend(SETTINGS)
    song = phrase_song(2, 8000)[0]
    period = int((PHRASE_S + 0.25) * 8000)
    start, known = _window(first_frame=10, frames=128, gap_frames=slice(40, 60))
    known[90:100] = False  # the other gap
    own = np.zeros(128, dtype=bool)
    own[40:60] = True
    spans = [(start + 40 * 64, start + 60 * 64), (start + 90 * 64, start + 100 * 64)]  # the window's two gaps
    avoid = spans + [(spans[1][0] + period, spans[1][1] + period)]  # the repeat's dropout
    recording = RecordingFeatures(lambda lo, hi: np.pad(song, (max(0, -lo), max(0, hi - len(song))))[max(lo, 0) : max(lo, 0) + hi - lo],
                                  len(song), frontend, avoid)
    found = find_references(recording, start, 128, known, count=1, needed=own)
    assert found and abs(found[0].offset - period) <= 64 and found[0].quality > 0.3
    strict = find_references(recording, start, 128, known, count=1)
    assert not strict or abs(strict[0].offset - period) > 64


def test_a_repeat_with_a_short_dropout_where_the_gap_is_serves_the_network_with_the_dropout_drawn_over():
    """Dense damage: the only true repeat of the music around a gap has a short dropout of its own
    where the gap is.  The network still gets it (it touches another gap on a small share of the
    gap's frames), with that dropout's frames drawn over by straight lines rather than handed on
    as silence; the vocoder, which would copy its samples, does not."""
    rate = 8000
    song = np.repeat(phrase_song(3, rate), 2, axis=0)
    period = int((PHRASE_S + 0.25) * rate)
    gap = Gap(2 * period + 2000, 2 * period + 5200)  # in the third repeat: the second is the one to copy
    dropout = Gap(period + 3000, period + 3016)
    damaged = song.copy()
    for g in (gap, dropout):
        damaged[:, g.start : g.end] = 0.0
    vocoder = get_registry().build("vocoders", "griffin-lim", reference_min_quality=0.0)  # takes any clean stretch
    engine = Engine(CopyTheBestMatch(), vocoder, SETTINGS)
    window = engine.analyse(damaged, rate, gap, [gap, dropout], engine.choose(gap, rate).window_frames)
    recording = engine.recording_features(damaged, rate, [gap, dropout])
    n_frames = len(window.missing_frames)

    strict = find_references(recording, window.file_start, n_frames, ~window.missing_frames, 1, window.gap_frames)
    assert abs(strict[0].offset + period) > 64  # clean wherever the gap is: some other stretch
    found = find_references(recording, window.file_start, n_frames, ~window.missing_frames, 1, window.gap_frames,
                            REFERENCE_MAX_DIRTY)
    assert abs(found[0].offset + period) <= 64 and 0 < found[0].dirty <= 0.1 and found[0].quality > strict[0].quality

    engine.retrieve([window], damaged, recording)
    assert window.quality[0] == np.float32(found[0].quality)
    # The vocoder's stretch is the clean one: in the hole it is not the music (the repeat would be, to 0.01).
    assert np.abs(window.reference - engine.cut_like(window, song, window.file_start))[:, window.missing].max() > 0.1
    frontend = MelFrontend(SETTINGS)
    start = window.file_start + int(found[0].offset)
    truth, as_cut = (frontend.log_mel(engine.cut_like(window, x, start)) for x in (song, damaged))
    dirty = recording.dirty_frames(recording.frame_at(window.file_start) + int(found[0].offset) // 64, n_frames)
    assert 0 < dirty.sum() < 10
    planes = window.references[:, 0]
    assert np.array_equal(planes[..., ~dirty], as_cut[..., ~dirty])
    # Across the dropout: close to the music the repeat really holds, where the cut holds its silence.
    assert np.abs(planes - truth)[..., dirty].mean() < 0.5 * np.abs(as_cut - truth)[..., dirty].mean()


def test_a_long_gaps_window_takes_the_repeat_a_bar_away_though_it_overlaps_the_window():
    """The phrase repeats every 1.75 s; a 0.6 s gap's window is 2 s long, so the one repeat the
    recording has of the gap's surroundings lies nearer than a window's length.  The engine still
    retrieves it (a long gap's references may lie as near as the gap is long), and so does the
    vocoder's own search for a clean stretch; a short gap's window keeps clear of itself, as before."""
    rate = 8000
    song = phrase_song(3, rate)
    period = int((PHRASE_S + 0.25) * rate)
    gap = Gap(period + 2000, period + 6800)
    damaged = song.copy()
    damaged[:, gap.start : gap.end] = 0.0
    engine = Engine(CopyTheBestMatch(), get_registry().build("vocoders", "griffin-lim"), SETTINGS)
    n_frames = engine.choose(gap, rate).window_frames
    window = engine.analyse(damaged, rate, gap, [gap], n_frames)
    assert n_frames == 256 and n_frames * 64 > period
    assert engine.nearest_reference(window) == window.gap_frames.sum() < n_frames
    recording = engine.recording_features(damaged, rate, [gap])
    far_only = find_references(recording, window.file_start, n_frames, ~window.missing_frames, 1, window.gap_frames)
    assert not far_only or min(abs(far_only[0].offset - k * period) for k in (-2, -1, 1, 2)) > 64
    near = find_references(recording, window.file_start, n_frames, ~window.missing_frames, 1, window.gap_frames,
                           min_offset=engine.nearest_reference(window))
    assert abs(near[0].offset - period) <= 64 and near[0].quality > 0.5  # the repeat, overlapping the window
    engine.retrieve([window], damaged, recording)
    assert window.quality[0] == np.float32(near[0].quality)
    # A vocoder's stretch may lie as near, also where it is searched on its own (no network references).
    vocoder = get_registry().build("vocoders", "griffin-lim", reference_min_quality=0.0)
    alone = Engine(Interpolation(), vocoder, SETTINGS)
    window.reference = None
    alone.retrieve([window], damaged, recording)
    assert window.reference is not None
    truth = alone.cut_like(window, song, window.file_start)
    assert np.abs(window.reference - truth)[:, window.missing].max() < 0.01  # the repeat, to the sample
    short = Gap(period + 2000, period + 2800)
    short_window = engine.analyse(damaged, rate, short, [short], engine.choose(short, rate).window_frames)
    assert engine.nearest_reference(short_window) == short_window.log_mel.shape[-1]


def test_training_windows_take_the_repeat_a_bar_away_as_the_engine_does():
    """The training sampler retrieves by the engine's rule (``nearest_offset``): in a song whose
    only repeat of a 2 s window lies a bar (1.75 s) away, a long gap's window gets that repeat,
    overlapping it, so the network trains on what the engine hands it."""
    song = phrase_song(3, 8000)
    sampler = WindowSampler([song], SETTINGS, (64, 128, 256), context=16, max_gap_seconds=1.0, seed=0, references=1)
    assert SETTINGS.samples_for(256) > int((PHRASE_S + 0.25) * 8000)
    clean, damaged, missing, references, quality = sampler.batch(256, 16)
    assert np.median(quality[:, 0]) > 0.5
    # The references are the music the gaps hide: closer to the truth there than the interpolation.
    gap = np.broadcast_to(missing[:, None, :], clean.shape)
    interpolated = networks.prepare(damaged, missing)[1]
    assert np.abs(references[:, 0] - clean)[gap].mean() < 0.6 * np.abs(interpolated - clean)[gap].mean()


def test_a_stretchs_dirty_frames_reach_one_frame_past_the_other_gaps():
    frontend = MelFrontend(SETTINGS)
    recording = RecordingFeatures.of_samples(phrase_song(2, 8000)[0], frontend)
    recording.bad[:] = False
    recording.bad[[0, 20, 21]] = True
    assert np.flatnonzero(recording.dirty_frames(0, 30)).tolist() == [0, 1, 19, 20, 21, 22]
    assert np.flatnonzero(recording.dirty_frames(21, 5)).tolist() == [0, 1]
    assert np.flatnonzero(recording.dirty_frames(-3, 5)).tolist() == [2, 3, 4]  # before the recording: none but the first frame's
    assert not recording.dirty_frames(recording.frames - 2, 4).any()


def test_features_in_blocks_and_at_another_rate_equal_one_pass():
    frontend = MelFrontend(SETTINGS)
    audio = phrase_song(3, 11025)
    whole = RecordingFeatures.of_samples(resample(audio, 11025, 8000)[0], frontend)
    interior = slice(4, -4)  # the first and last frames see the recording's edge differently
    for block_frames in (4096, 50):
        blockwise = RecordingFeatures.of_recording(audio, 11025, frontend, block_frames=block_frames)
        assert blockwise.features.shape == whole.features.shape
        frames = whole.frames
        assert np.abs(blockwise.features.span(0, frames) - whole.features.span(0, frames))[:, interior].max() < 1e-3


class CopyTheBestMatch:
    """An inpainter that takes one reference and pastes it into the missing frames: what a
    network could learn to do on music that repeats exactly."""

    settings = SETTINGS
    window_frames = (64, 128, 256)
    max_gap_seconds = 1.0
    references = 1

    def inpaint(self, log_mel, missing, references, quality):
        assert references.shape == (len(log_mel), 1, *log_mel.shape[1:]) and quality.shape == (len(log_mel), 1)
        return np.where(missing[:, None, :], references[:, 0], log_mel)


class Interpolation(CopyTheBestMatch):
    references = 0

    def inpaint(self, log_mel, missing):
        return networks.finish(np.zeros((len(log_mel), 1, *log_mel.shape[1:]), np.float32),
                               *networks.prepare(log_mel, missing)[1::2], missing)


def test_the_engine_retrieves_references_for_inpainters_that_take_them():
    rate = 8000
    song = np.repeat(phrase_song(6, rate), 2, axis=0)  # stereo
    gap = Gap(4 * int(1.75 * rate) + 2000, 4 * int(1.75 * rate) + 5200)  # 0.4 s inside the fifth repeat
    damaged = song.copy()
    damaged[:, gap.start : gap.end] = 0.0
    vocoder = get_registry().build("vocoders", "griffin-lim", reference_min_quality=2.0)  # takes none
    frontend = MelFrontend(SETTINGS)
    errors = {}
    for name, inpainter in (("copy", CopyTheBestMatch()), ("interpolation", Interpolation())):
        engine = Engine(inpainter, vocoder, SETTINGS)
        fills, results = engine.repair(damaged, rate, [gap])
        assert results[0].status == "repaired"
        assert ("retrieve" in engine.timings) == (name == "copy")
        repaired = damaged.copy()
        repaired[:, gap.start : gap.end] = fills[gap]
        around = slice(gap.start - 256, gap.end + 256)
        fill_mel, true_mel = (np.exp(frontend.log_mel(x[:, around])) for x in (repaired, song))
        errors[name] = np.linalg.norm(fill_mel - true_mel) / np.linalg.norm(true_mel)  # spectral convergence
    # The repeat heard earlier in the song is a far better fill than a straight line.
    assert errors["copy"] < 0.7 * errors["interpolation"]


def test_a_network_called_without_references_is_told_there_is_no_match():
    rng = np.random.default_rng(0)
    log_mel = rng.standard_normal((2, 8, 32)).astype(np.float32)
    missing = np.zeros((2, 32), dtype=bool)
    missing[:, 10:20] = True
    inputs = networks.prepare(log_mel, missing, planes=7)[0]
    assert inputs.shape == (2, 7, 8, 32) and not inputs[:, 3:].any()
    references = np.repeat(log_mel[:, None], 2, axis=1)
    quality = np.array([[0.9, 0.0], [0.5, 0.2]], dtype=np.float32)
    inputs = networks.prepare(log_mel, missing, 7, references, quality)[0]
    assert np.allclose(inputs[0, 4], 0.9) and not inputs[0, 5:].any()  # the second reference of item 0 is absent
    assert np.allclose(inputs[1, 6], 0.2)


def test_the_vocoder_is_handed_the_repeat_aligned_to_the_sample():
    rate = 8000
    song = phrase_song(6, rate)
    period = int((PHRASE_S + 0.25) * rate)  # 14000 samples: not a whole number of hops (64)
    gap = Gap(4 * period + 2000, 4 * period + 5200)
    damaged = song.copy()
    damaged[:, gap.start : gap.end] = 0.0
    snr = {}
    for name, min_quality in (("with", 0.25), ("without", 2.0)):  # above 1: the vocoder takes no reference
        # The gap's true Mel frames (a perfect inpainter), so only the vocoder differs.
        engine = TrueMelEngine(Interpolation(), get_registry().build("vocoders", "griffin-lim", reference_min_quality=min_quality), SETTINGS)
        engine.undamaged = song
        window = engine.analyse(damaged, rate, gap, [gap], engine.choose(gap, rate).window_frames)
        engine.retrieve([window], damaged, engine.recording_features(damaged, rate, [gap]))
        engine.inpaint([window])
        if name == "with":
            # A whole number of repeats away, to the sample: in the hole it is the song itself (but for the noise).
            truth = engine.cut_like(window, song, window.file_start)
            assert np.abs(window.reference - truth)[:, window.missing].max() < 0.01
        else:
            assert window.reference is None
        fill = engine.vocode(window)
        truth = song[:, gap.start : gap.end]
        snr[name] = 10 * np.log10(np.sum(truth**2) / np.sum((fill - truth) ** 2))
    # Started from the repeat, the iterations keep its waveform; from noise they find another one.
    assert snr["with"] > 20 and snr["with"] > snr["without"] + 10
