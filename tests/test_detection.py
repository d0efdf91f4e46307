import numpy as np
import pytest
import soundfile as sf

from conftest import EXAMPLES, chord
from melrestore.audio import AudioFile
from melrestore.gaps import DetectionError, Gap, merge_gaps, runs
from melrestore.plugins.detectors import DigitalSilence, LabelFile, read_audacity_labels

RATE = 44100


def test_dropouts_in_music_are_found_exactly():
    audio = chord(3.0, RATE, channels=2)
    audio[:, 30000:31000] = 0.0
    audio[:, 80000:80132] = 0.0  # 3 ms
    gaps = DigitalSilence().detect(audio, RATE)
    assert [(g.start, g.end) for g in gaps] == [(30000, 31000), (80000, 80132)]
    assert "digital silence" in gaps[0].reason


def test_edges_quiet_music_and_faded_pauses_are_not_gaps():
    audio = chord(3.0, RATE, channels=2)
    audio[:, :5000] = 0.0  # leading silence
    audio[:, -5000:] = 0.0  # trailing silence
    quiet = chord(3.0, RATE, channels=2, level=1e-3)  # -60 dB music, never exactly zero
    quiet[:, 0] += 1e-4
    faded = chord(3.0, RATE, channels=2)
    faded[:, 40000:60000] *= np.geomspace(1, 1e-4, 20000)  # the music fades out (to -80 dB) ...
    faded[:, 60000:70000] = 0.0  # ... into a genuine pause
    fading_in = chord(3.0, RATE, channels=2)  # loud music stops dead, and after the pause ...
    fading_in[:, 60000:70000] = 0.0
    fading_in[:, 70000:90000] *= np.geomspace(1e-4, 1, 20000)  # ... the next part fades in from -80 dB
    detector = DigitalSilence()
    assert detector.detect(audio, RATE) == []
    assert detector.detect(quiet, RATE) == []
    assert detector.detect(faded, RATE) == []
    assert detector.detect(fading_in, RATE) == []  # both edges must sound: the left one alone does not make a dropout


@pytest.mark.parametrize("curve", ["linear", "equal-power"])
@pytest.mark.parametrize("fade_s", [0.25, 1.0, 3.0])
def test_a_pause_the_music_fades_out_into_and_in_from_is_not_a_gap(curve, fade_s):
    music, rate = sf.read(EXAMPLES / "clean" / "mutilated-mime-a.flac", dtype="float64", always_2d=True)
    music = music.T
    n, half = int(fade_s * rate), music.shape[1] // 2
    ramp = np.linspace(0, 1, n) if curve == "linear" else np.sin(np.linspace(0, np.pi / 2, n))
    out, back = music[:, :half].copy(), music[:, half:].copy()
    out[:, -n:] *= ramp[::-1]
    back[:, :n] *= ramp
    pause = np.concatenate([out, np.zeros((2, rate)), back], axis=1)
    pause = np.round(pause * 32767) / 32768  # as a 16-bit file holds it
    assert DigitalSilence().detect(pause, rate) == []
    # The same silence with the music cut off at full level on both sides is a dropout, and so is
    # one the music fades into but that cuts it off on the other side (where the fade's last 20 ms
    # are above -60 dBFS: after 3 s they are not, and the old rule leaves it alone).
    one_sided = [(out, music[:, half:]), (music[:, :half], back)] if fade_s < 3 else []
    for before, after in [(music[:, :half], music[:, half:]), *one_sided]:
        cut = np.concatenate([before, np.zeros((2, rate)), after], axis=1)
        cut = np.round(cut * 32767) / 32768
        [gap] = DigitalSilence().detect(cut, rate)
        assert gap.length >= rate


class _Reads:
    """An array read as a file is (``audio[:, a:b]``), noting how many samples each read takes."""

    def __init__(self, samples: np.ndarray):
        self.samples, self.shape, self.ndim, self.dtype, self.lengths = samples, samples.shape, 2, samples.dtype, []

    def __getitem__(self, key):
        start, stop, _ = key[1].indices(self.shape[1])
        self.lengths.append(max(0, stop - start))
        return self.samples[key]


def test_a_dropout_near_the_start_is_judged_by_the_music_there_is_and_never_reads_the_whole_file():
    """The fade rule looks 100-400 ms out from a silence: before the file's start there is no music
    (the span is empty), not the whole file read from its end."""
    rate, n = 44100, 44100 * 20
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(n) / rate))[None]
    a, b = int(0.06 * rate), int(0.56 * rate)
    tone[:, :a] *= np.linspace(1, 0, a) ** 2  # the file opens on a note dying away into a silence ...
    tone[:, a:b] = 0.0
    tone[:, b : b + rate // 2] *= np.linspace(0, 1, rate // 2) ** 1.5  # ... that the music fades back in from
    audio = _Reads(np.round(tone * 32767) / 32768)
    [gap] = DigitalSilence(block_samples=rate).detect(audio, rate)  # no music before it to fade from: a dropout
    assert gap.start <= a and b <= gap.end < b + rate // 10
    assert max(audio.lengths) <= rate  # blocks of a second, and edges


def test_quiet_music_in_an_8_bit_file_is_not_taken_for_dropouts_and_a_dropout_there_is(tmp_path):
    music, rate = sf.read(EXAMPLES / "clean" / "mutilated-mime-a.flac", dtype="float64", always_2d=True)
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, music * 10 ** (-24 / 20), rate, subtype="PCM_U8")  # its soft notes round to runs of zeros
    with AudioFile(quiet) as audio:
        assert DigitalSilence().detect(audio.waveform, rate, quiet) == []
        # The rule for 16 bits and more took dozens of them for dropouts.
        assert len(DigitalSilence().detect(np.asarray(audio.waveform), rate)) > 20
    music[2 * rate : 2 * rate + rate // 10] = 0.0  # a 100 ms dropout
    damaged = tmp_path / "damaged.wav"
    sf.write(damaged, music, rate, subtype="PCM_U8")
    with AudioFile(damaged) as audio:
        [gap] = DigitalSilence().detect(audio.waveform, rate, damaged)
    assert gap.start <= 2 * rate and 2 * rate + rate // 10 <= gap.end < 2 * rate + rate // 5


def test_music_that_decays_to_a_bit_above_zero_then_stops_dead_is_a_pause_not_a_gap():
    """As electronic music does between hits: a chord dying away (its last 20 ms at -63 dBFS),
    then 30 ms of exact zeros, then the next hit at full level (-20 dBFS)."""
    hit = chord(1.0, RATE, channels=2)
    tail = chord(0.3, RATE, channels=2) * np.geomspace(1.0, 10 ** (-45 / 20), int(0.3 * RATE))
    tail = np.round(tail * 32768) / 32768  # as stored in 16 bits: the last of it is a bit or two
    audio = np.concatenate([hit, tail, np.zeros((2, int(0.03 * RATE)), np.float32), hit], axis=1)
    assert DigitalSilence().detect(audio, RATE) == []
    assert len(DigitalSilence(min_level_db=-70).detect(audio, RATE)) == 1  # the old level took it for a dropout


def test_zeros_shorter_than_the_minimum_are_not_gaps():
    audio = chord(2.0, RATE, channels=2)
    audio[:, 40000:40040] = 0.0  # 0.9 ms
    assert DigitalSilence().detect(audio, RATE) == []
    assert len(DigitalSilence(min_ms=0.5).detect(audio, RATE)) == 1


def test_a_dropout_of_one_channel_is_a_gap_of_that_channel_only():
    audio = chord(2.0, RATE, channels=3)
    audio[1, 20000:25000] = 0.0  # the second channel drops out, the others play on
    audio[:, 50000:51000] = 0.0  # every channel: an ordinary dropout ...
    audio[0, 49000:52000] = 0.0  # ... inside a longer one of the first channel: its parts on either side
    gaps = DigitalSilence().detect(audio, RATE)
    assert [(g.start, g.end, g.channels) for g in gaps] == [(20000, 25000, (1,)), (49000, 50000, (0,)), (50000, 51000, None),
                                                            (51000, 52000, (0,))]
    assert "channel 2" in gaps[0].reason


def test_a_channel_that_fades_into_zeros_is_no_gap():
    """A hard-panned part that stops: its own channel decays below -60 dBFS before the zeros."""
    audio = chord(2.0, RATE, channels=2)
    audio[0, 20000:22000] *= np.linspace(1, 0, 2000) ** 8
    audio[0, 22000:30000] = 0.0
    assert DigitalSilence().detect(audio, RATE) == []


def test_gaps_of_different_channels_merge_only_where_they_overlap():
    """No channel's sample outside its own gaps is ever in a merged gap of that channel."""
    overlapping = merge_gaps([Gap(10, 20, "a", (0,)), Gap(15, 30, "b", (2,))])
    assert [(g.start, g.end, g.channels) for g in overlapping] == [(10, 15, (0,)), (15, 20, (0, 2)), (20, 30, (2,))]
    assert overlapping[1].reason == "a; b"
    label_over_a_channel = merge_gaps([Gap(5, 12, "dropout", (1,)), Gap(10, 30, "label")])
    assert [(g.start, g.end, g.channels) for g in label_over_a_channel] == [(5, 10, (1,)), (10, 30, None)]
    inside = merge_gaps([Gap(10, 30, "label"), Gap(15, 20, "dropout", (0,))])
    assert inside == [Gap(10, 30, "label; dropout")]
    side_by_side = merge_gaps([Gap(10, 20, "a"), Gap(20, 30, "b", (1,))])
    assert [(g.start, g.end, g.channels) for g in side_by_side] == [(10, 20, None), (20, 30, (1,))]
    assert merge_gaps([Gap(10, 20, "a", (1,)), Gap(20, 30, "b", (1,))]) == [Gap(10, 30, "a; b", (1,))]


def test_a_dropout_a_sample_from_others_is_found_by_the_music_beside_it():
    """Its 20 ms edges are mostly the neighbouring dropouts' zeros: the level is that of the music
    samples between them alone."""
    audio = chord(3.0, RATE, channels=2)
    long, short = int(0.1 * RATE), int(0.01 * RATE)
    spans = [(40000, 40000 + long), (40001 + long, 40001 + long + short), (40002 + long + short, 40002 + 2 * long + short)]
    for start, end in spans:
        audio[:, start:end] = 0.0
    audio[:, [spans[0][1], spans[1][1]]] = 0.02  # the music between them: one sample at -34 dBFS
    assert [(g.start, g.end) for g in DigitalSilence().detect(audio, RATE)] == spans


def test_tolerance_catches_near_zero_dropouts():
    audio = chord(2.0, RATE)
    audio[:, 20000:22000] = 1 / 32768  # one LSB of dither left in the dropout
    assert DigitalSilence().detect(audio, RATE) == []
    assert [(g.start, g.end) for g in DigitalSilence(tolerance_lsb=1).detect(audio, RATE)] == [(20000, 22000)]


@pytest.mark.parametrize("clip", ["mutilated-mime-a", "mutilated-mime-c"])  # 44.1 and 22.05 kHz
def test_an_mp3_dropout_is_found_through_the_encoders_faint_smear_at_its_edges(tmp_path, clip):
    music, rate = sf.read(EXAMPLES / "clean" / f"{clip}.flac", dtype="float32", always_2d=True)
    start, end = len(music) // 2, len(music) // 2 + int(0.3 * rate)
    music[start:end] = 0.0  # the dropout happened before the file was encoded
    sf.write(tmp_path / "song.mp3", music, rate, format="MP3", subtype="MPEG_LAYER_III")
    with AudioFile(tmp_path / "song.mp3") as audio:
        found = DigitalSilence(mp3_smear_ms=40).detect(audio.waveform, rate, tmp_path / "song.mp3")
        by_default = DigitalSilence().detect(audio.waveform, rate, tmp_path / "song.mp3")
        lossless = _decoded_as_wav(audio, tmp_path / "song.wav")
        as_if_lossless = DigitalSilence(mp3_smear_ms=40).detect(lossless, rate, tmp_path / "song.wav")
    assert len(found) == 1 and start <= found[0].start and found[0].end <= end  # never past the dropout
    assert found[0].length > 0.9 * (end - start)
    # Off by default (gated electronic music has pauses just like it), and never in a lossless file.
    assert sum(g.length for g in by_default) < 0.9 * (end - start) and as_if_lossless == []


def test_a_dropout_found_in_an_ogg_file_is_widened_over_the_encoders_smear_and_no_further(tmp_path):
    music, rate = sf.read(EXAMPLES / "clean" / "mutilated-mime-c.flac", dtype="float32", always_2d=True)
    start, end = len(music) // 2, len(music) // 2 + int(0.3 * rate)
    music[start:end] = 0.0
    sf.write(tmp_path / "song.ogg", music, rate, format="OGG", subtype="VORBIS")
    with AudioFile(tmp_path / "song.ogg") as audio:
        [found] = DigitalSilence().detect(audio.waveform, rate, tmp_path / "song.ogg")
        decoded = np.asarray(audio.waveform)
    [zeros] = [(s, e) for s, e in runs(~decoded.any(axis=0)) if s < end and start < e]  # the exact zeros Vorbis kept
    assert start <= found.start < zeros[0] and zeros[1] < found.end <= end


def _decoded_as_wav(audio: AudioFile, path):
    """``audio``'s decoded samples in a float WAV at ``path`` (the same samples, a lossless file)."""
    samples = np.asarray(audio.waveform)
    sf.write(path, samples.T, audio.sample_rate, subtype="FLOAT")
    return samples


def test_audacity_labels(tmp_path):
    audio_path = tmp_path / "song.wav"
    (tmp_path / "song.txt").write_text(
        "1.000000\t1.250000\tclick\n"
        "\\\t200.0\t4000.0\n"  # spectral selection line: skipped
        "2.500000\t2.500000\tpoint\n"  # point label: nothing to repair
        "3.0\t3.5\n",
        encoding="utf-8",
    )
    gaps = LabelFile().detect(chord(4.0, RATE), RATE, audio_path)
    assert [(g.start, g.end) for g in gaps] == [(44100, 55125), (132300, 154350)]
    assert gaps[0].reason == "label 'click'"


def test_old_audacity_export_has_start_and_label_only(tmp_path):
    path = tmp_path / "old.txt"
    path.write_text("1.5\tverse\n", encoding="utf-8")
    assert read_audacity_labels(path) == [(1.5, 1.5, "verse")]


def test_a_text_file_that_is_not_a_label_track_is_ignored(tmp_path):
    path = tmp_path / "lyrics.txt"
    path.write_text("Verse one\nla la la\n", encoding="utf-8")
    assert read_audacity_labels(path) == []


@pytest.mark.parametrize("line", ["abc\t1.0\tx", "2.0\t1.0\tbackwards", "-1\t1\tneg"])
def test_malformed_label_lines_are_reported_with_their_number(tmp_path, line):
    path = tmp_path / "bad.txt"
    path.write_text(f"0.5\t0.6\tok\n{line}\n", encoding="utf-8")
    with pytest.raises(DetectionError, match="line 2"):
        read_audacity_labels(path)


def test_json_sidecar(tmp_path):
    (tmp_path / "take.gaps.json").write_text('{"gaps": [{"start": 0.5, "end": 0.75}]}')
    gaps = LabelFile().detect(chord(1.0, RATE), RATE, tmp_path / "take.flac")
    assert [(g.start, g.end) for g in gaps] == [(22050, 33075)]
    (tmp_path / "take.gaps.json").write_text('{"gaps": [{"begin": 0.5}]}')
    with pytest.raises(DetectionError, match="take.gaps.json"):
        LabelFile().detect(chord(1.0, RATE), RATE, tmp_path / "take.flac")
    for start, end in (("NaN", "1.0"), ("0.5", "Infinity")):  # json reads both
        (tmp_path / "take.gaps.json").write_text(f'{{"gaps": [{{"start": {start}, "end": {end}}}]}}')
        with pytest.raises(DetectionError, match="take.gaps.json, gap 0: bad time range"):
            LabelFile().detect(chord(1.0, RATE), RATE, tmp_path / "take.flac")


def test_overlapping_gaps_merge():
    merged = merge_gaps([Gap(10, 20, "a"), Gap(15, 30, "b"), Gap(40, 50, "c"), Gap(30, 35, "a")])
    assert [(g.start, g.end) for g in merged] == [(10, 35), (40, 50)]
    assert merged[0].reason == "a; b"


def _clicks(period_s: float, blip_samples: int, seconds: float = 8.0) -> np.ndarray:
    """A stereo click track: a 1 kHz blip (``blip_samples`` long, cut off, not faded) every
    ``period_s``, exact zeros between."""
    audio = np.zeros((2, int(seconds * RATE)), dtype=np.float32)
    t = np.arange(blip_samples) / RATE
    blip = 0.5 * np.cos(2 * np.pi * 1000 * t) * np.exp(-200 * t)
    for at in np.arange(0.1, seconds - 0.1, period_s):
        audio[:, int(at * RATE) : int(at * RATE) + blip_samples] = blip
    return audio


@pytest.mark.parametrize("period_s, blip_samples", [(0.25, 1), (0.5, 1), (0.5, 882)])  # clicks of a sample, blips of 20 ms
def test_the_silences_of_a_click_track_are_no_dropouts(period_s, blip_samples):
    """Each silence is cut off by a click on both sides, as a dropout is by the music; but the clicks
    are the music (they were filled with loud noise)."""
    assert DigitalSilence().detect(_clicks(period_s, blip_samples), RATE) == []
    beside_music = _clicks(period_s, blip_samples)
    beside_music[0] = chord(8.0, RATE)[0]  # the click track in one channel, music in the other
    assert DigitalSilence().detect(beside_music, RATE) == []


@pytest.mark.parametrize("every_ms, lost_ms", [(100, 30), (200, 150)])
def test_dropouts_close_together_in_music_are_all_found(every_ms, lost_ms):
    """Lost packets: ten dropouts of 30 ms, one every 100 ms, are dropouts: the music fills most of
    their stretch; and an underrun's 150 ms of every 200, where the music between is longer than a click."""
    audio = chord(3.0, RATE, channels=2)
    every, lost = every_ms * RATE // 1000, lost_ms * RATE // 1000
    spans = [(RATE // 2 + k * every, RATE // 2 + k * every + lost) for k in range(10)]
    for start, end in spans:
        audio[:, start:end] = 0.0
    assert [(g.start, g.end) for g in DigitalSilence().detect(audio, RATE)] == spans


def test_a_click_track_beside_a_late_entry_or_a_stop_of_the_music_in_the_other_channel():
    """A click track in channel 1; channel 2 silent until the music comes in, then stopping for a
    second.  The silence before the entry is no dropout (it was filled in both channels, loud), and
    the stop is one dropout of channel 2 alone (the clicks' silences stay as they are)."""
    clicks = _clicks(0.25, 220, seconds=8.0)[0]
    music = chord(8.0, RATE)[0]
    music[: int(1.25 * RATE)] = 0.0  # comes in late
    music[4 * RATE : 5 * RATE] = 0.0  # and stops for a second
    gaps = merge_gaps(DigitalSilence().detect(np.stack([clicks, music]), RATE))  # (in pieces, between the clicks)
    assert [(g.start, g.end, g.channels) for g in gaps] == [(4 * RATE, 5 * RATE, (1,))]


@pytest.mark.parametrize("into_s", [0.2, 0.45])
def test_a_dropout_soon_after_a_click_track_intro_is_found(into_s):
    """The music after the intro ends the clicks' run of silences: a dropout 0.2 s into it was taken
    for one more silence of the click track."""
    intro = _clicks(0.25, 220, seconds=3.0)
    audio = np.concatenate([intro, chord(3.0, RATE, channels=2)], axis=1)
    start = 3 * RATE + int(into_s * RATE)
    audio[:, start : start + 2205] = 0.0
    assert [(g.start, g.end) for g in DigitalSilence().detect(audio, RATE)] == [(start, start + 2205)]
