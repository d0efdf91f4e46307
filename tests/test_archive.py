"""Safe with a real archive: tags and chunks kept, failures never hidden, folders and modes respected."""

import contextlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from conftest import EXAMPLES, chord, write
from melrestore import audio as audio_io
from melrestore.atomic import TEMP_SUFFIX, ScratchFolder, temporary_prefix
from melrestore.batch import SCAN_SHARE, repair_file, run_batch
from melrestore.container import _mp3_tag_spans
from melrestore.cli import cli
from melrestore.engine import Engine
from melrestore.mel import MelSettings
from melrestore.output_lock import claim_output
from melrestore.pipeline import PipelineOptions
from melrestore.plugins.detectors import DigitalSilence
from melrestore.plugins.interpolation import Interpolation
from melrestore.reports import REPORT_NAME, summary_of

INTERP = ["--inpainter", "interpolation"]
GAP = (40000, 42000)  # 45 ms at 44.1 kHz: the Mel pipeline's


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _damaged_chord(seconds=2.0, rate=44100, channels=2):
    audio = chord(seconds, rate, channels)
    audio[:, GAP[0] : GAP[1]] = 0.0
    return audio


def _add_chunk(path, chunk_id: bytes, payload: bytes) -> None:
    """Append a chunk (an iXML or ANNO note a tagger might add) and fix the container's size field."""
    data = bytearray(path.read_bytes())
    big = data[:4] == b"FORM"
    data += chunk_id + struct.pack(">I" if big else "<I", len(payload)) + payload + (b"\0" if len(payload) % 2 else b"")
    data[4:8] = struct.pack(">I" if big else "<I", len(data) - 8)
    path.write_bytes(bytes(data))


def _tagged(path, fmt, subtype):
    audio = _damaged_chord()
    with sf.SoundFile(path, "w", 44100, 2, subtype=subtype, format=fmt) as f:
        f.title, f.artist = "Mutilated Mime", "Muldjord"
        f.write(audio.T)
    _add_chunk(path, b"iXML" if fmt == "WAV" else b"ANNO", b"<note>kept byte for byte</note>")
    return path


# -- 1. tags and metadata chunks ------------------------------------------------


@pytest.mark.parametrize("fmt,subtype,ext", [
    ("WAV", "PCM_16", "wav"), ("WAV", "PCM_U8", "wav"), ("WAV", "PCM_24", "wav"), ("WAV", "FLOAT", "wav"),
    ("AIFF", "PCM_16", "aiff"), ("AIFF", "PCM_S8", "aiff"), ("AIFF", "PCM_32", "aiff"), ("AIFF", "FLOAT", "aifc"),
])
def test_wav_and_aiff_keep_every_byte_outside_the_gap(tmp_path, interp_engine, fmt, subtype, ext):
    src = _tagged(tmp_path / f"in.{ext}", fmt, subtype)
    out = tmp_path / f"out.{ext}"
    _repair_and_check_only_the_gap_changed(interp_engine, src, out)
    with sf.SoundFile(out) as f:
        assert (f.title, f.artist) == ("Mutilated Mime", "Muldjord")
    assert b"<note>kept byte for byte</note>" in out.read_bytes()


@pytest.mark.parametrize("fmt,subtype,ext", [
    ("RF64", "PCM_16", "wav"), ("RF64", "PCM_24", "wav"), ("W64", "PCM_16", "w64"), ("W64", "FLOAT", "w64"),
])
def test_wav_past_4_gb_containers_are_patched_in_place_too(tmp_path, interp_engine, fmt, subtype, ext):
    """RF64 and Wave64, the WAVs of files over 4 GB: 64-bit sizes, and Wave64's chunks named by GUID."""
    src, out = tmp_path / f"in.{ext}", tmp_path / f"out.{ext}"
    sf.write(src, _damaged_chord().T, 44100, subtype=subtype, format=fmt)
    assert audio_io.pcm_layout(src).declared_bytes == sf.info(src).frames * 2 * {"PCM_16": 2, "PCM_24": 3, "FLOAT": 4}[subtype]
    _repair_and_check_only_the_gap_changed(interp_engine, src, out)
    assert sf.info(out).format == fmt


def _repair_and_check_only_the_gap_changed(engine, src, out):
    report = repair_file(engine, src, out)
    assert report.status == "repaired", report.message
    before, after = src.read_bytes(), out.read_bytes()
    assert len(after) == len(before)
    layout = audio_io.pcm_layout(src)
    frame_bytes = layout.declared_bytes // sf.info(src).frames
    changed = np.flatnonzero(np.frombuffer(before, np.uint8) != np.frombuffer(after, np.uint8))
    assert changed.size > 0
    assert changed.min() >= layout.data_offset + GAP[0] * frame_bytes
    assert changed.max() < layout.data_offset + GAP[1] * frame_bytes
    filled = audio_io.read(out).as_float()[:, GAP[0] : GAP[1]]
    assert np.sqrt(np.mean(filled**2)) > 0.02  # the gap really got music


@pytest.mark.parametrize("subtype,ext", [("PCM_32", "wav"), ("PCM_24", "flac")])
def test_a_dropout_of_one_channel_is_filled_in_that_channel_only(tmp_path, interp_engine, subtype, ext):
    """32-bit samples do not survive a trip through float32: the other channel must be kept as stored."""
    stored = np.round(chord(2.0, 44100, 2).T * 2.0**31).astype(np.int64)
    stored += np.random.default_rng(0).integers(-255, 256, stored.shape)  # low bits that float32 drops
    stored = np.clip(stored, -(2**31), 2**31 - 1).astype(np.int32)
    stored[GAP[0] : GAP[1], 1] = 0
    src, out = tmp_path / f"in.{ext}", tmp_path / f"out.{ext}"
    sf.write(src, stored, 44100, subtype=subtype)
    report = repair_file(interp_engine, src, out)
    assert report.status == "repaired", report.message
    assert [(g["start"], g["end"], g["channels"]) for g in report.gaps] == [(GAP[0], GAP[1], [1])]
    before, after = audio_io.read(src).samples, audio_io.read(out).samples
    changed = np.argwhere(before != after)
    assert set(changed[:, 1]) == {1} and changed[:, 0].min() >= GAP[0] and changed[:, 0].max() < GAP[1]
    filled = audio_io.read(out).as_float()[1, GAP[0] : GAP[1]]
    assert np.sqrt(np.mean(filled**2)) > 0.02  # the gap really got music


@pytest.mark.parametrize("dropouts, found", [
    # channel 1 drops out first, then channel 2 too: channel 1's part and the part of both
    ({0: (40000, 44410), 1: (42205, 44410)}, [(40000, 42205, [0]), (42205, 44410, None)]),
    # channels 1 and 2 of three drop out at overlapping times: each alone, then both
    ({0: (40000, 42205), 1: (41000, 43205)}, [(40000, 41000, [0]), (41000, 42205, [0, 1]), (42205, 43205, [1])]),
])
def test_overlapping_dropouts_of_different_channels_fill_every_zero_and_nothing_else(tmp_path, interp_engine, dropouts, found):
    before, after = _repaired_dropouts(tmp_path, interp_engine, chord(2.0, 44100, 3 if len(found) == 3 else 2), dropouts, found)
    dropped = before.samples == 0
    assert (after.samples[dropped] == 0).mean() < 0.02  # nearly all of the dropouts' samples are music now (a few cross zero)


def _repaired_dropouts(tmp_path, engine, audio, dropouts, found):
    """``audio`` with ``dropouts`` (channel: (start, end)) written and repaired as a file, which
    must report the gaps ``found`` repaired and change no sample outside the dropouts: the input
    and output as read."""
    for channel, (start, end) in dropouts.items():
        audio[channel, start:end] = 0.0
    src = write(tmp_path / "in.wav", audio, 44100)
    report = repair_file(engine, src, tmp_path / "out.wav")
    assert [(g["start"], g["end"], g["channels"]) for g in report.gaps] == found
    assert all(g["status"] == "repaired" for g in report.gaps)
    before, after = audio_io.read(src), audio_io.read(tmp_path / "out.wav")
    assert not (before.samples != after.samples)[before.samples != 0].any()  # no sample outside the dropouts changed
    return before, after


@pytest.mark.parametrize("dropouts, found", [
    # channel 1 first, then both: at the seam channel 1's two fills meet, channel 2's fill meets its own music
    ({0: (40000, 44410), 1: (42205, 44410)}, [(40000, 42205, [0]), (42205, 44410, None)]),
    # both, then channel 1 alone
    ({0: (40000, 44410), 1: (40000, 42205)}, [(40000, 42205, None), (42205, 44410, [0])]),
    # channel 1, both, channel 1 again: two seams, the middle part's fill joined at both ends
    ({0: (40000, 46000), 1: (42000, 44000)}, [(40000, 42000, [0]), (42000, 44000, None), (44000, 46000, [0])]),
    # channel 1, then channel 2 alone: no channel shared, each fill meets the other channel's music
    ({0: (40000, 42205), 1: (42205, 44410)}, [(40000, 42205, [0]), (42205, 44410, [1])]),
])
def test_touching_dropouts_of_different_channels_join_without_a_step(tmp_path, interp_engine, dropouts, found):
    clean = chord(2.0, 44100, 2)
    _, after = _repaired_dropouts(tmp_path, interp_engine, clean.copy(), dropouts, found)
    # At every edge of every part, in both channels, the repair steps no more than the chord ever does
    # (plus a 16-bit step each side for rounding); before the parts were joined it stepped up to 0.13.
    largest = np.abs(np.diff(clean, axis=1)).max(axis=1) + 2 / 32768
    repaired = after.as_float()
    for start, end, _ in found:
        for edge in (start, end):
            assert (np.abs(repaired[:, edge] - repaired[:, edge - 1]) <= largest).all(), (edge, repaired[:, edge - 1 : edge + 1])


def _picture():
    from mutagen.flac import Picture

    picture = Picture()
    picture.type, picture.mime, picture.desc = 3, "image/png", "front cover"
    picture.data = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    return picture


def test_flac_keeps_vorbis_comments_and_pictures(tmp_path, interp_engine):
    from mutagen.flac import FLAC

    src = write(tmp_path / "in.flac", _damaged_chord(), 44100, "PCM_24")
    tagged = FLAC(src)
    tagged["title"], tagged["artist"], tagged["album"] = "Mutilated Mime", "Muldjord", "Fretsonfire songs"
    tagged["replaygain_track_gain"] = "-3.2 dB"
    tagged.add_picture(_picture())
    tagged.save()
    out = tmp_path / "out.flac"
    assert repair_file(interp_engine, src, out).status == "repaired"
    kept = FLAC(out)
    assert sorted(kept.tags) == sorted(FLAC(src).tags)
    assert [(p.type, p.mime, p.desc, p.data) for p in kept.pictures] == [(3, "image/png", "front cover", _picture().data)]
    before, after = audio_io.read(src), audio_io.read(out)
    keep = np.ones(before.frames, bool)
    keep[GAP[0] : GAP[1]] = False
    assert np.array_equal(before.samples[keep], after.samples[keep])


def test_a_flac_file_named_wav_is_repaired_as_flac_with_its_tags_and_a_warning(tmp_path, interp_engine):
    from mutagen.flac import FLAC

    flac = write(tmp_path / "song.flac", _damaged_chord(), 44100, "PCM_16")
    tagged = FLAC(flac)
    tagged["title"] = "Mutilated Mime"
    tagged.save()
    src = flac.rename(tmp_path / "song.wav")  # the name says WAV, the contents are FLAC
    out = tmp_path / "out" / "song.wav"
    report = repair_file(interp_engine, src, out)
    assert report.status == "repaired", report.message
    assert report.warnings == ["named .wav, but holds FLAC audio (read, and by `batch` written, as such)"]
    assert sf.info(out).format == "FLAC" and FLAC(out)["title"] == ["Mutilated Mime"]
    before, after = audio_io.read(src), audio_io.read(out)
    keep = np.ones(before.frames, bool)
    keep[GAP[0] : GAP[1]] = False
    assert np.array_equal(before.samples[keep], after.samples[keep])


def test_ogg_keeps_its_vorbis_comments(tmp_path, interp_engine):
    from mutagen.oggvorbis import OggVorbis

    src = write(tmp_path / "in.ogg", _damaged_chord(), 44100, "VORBIS", "OGG")
    tagged = OggVorbis(src)
    tagged["title"], tagged["artist"] = "Mutilated Mime", "Muldjord"
    tagged.save()
    # Marked by hand: a dropout made before lossy encoding is not always exact zeros once decoded.
    (tmp_path / "in.gaps.json").write_text(json.dumps({"gaps": [{"start": GAP[0] / 44100, "end": GAP[1] / 44100}]}))
    out = tmp_path / "out.ogg"
    report = repair_file(interp_engine, src, out)
    assert report.status == "repaired" and len(report.gaps) == 1, (report.status, report.message)
    assert OggVorbis(out)["title"] == ["Mutilated Mime"] and OggVorbis(out)["artist"] == ["Muldjord"]


def test_an_opus_files_cover_picture_does_not_count_in_its_bitrate(tmp_path):
    """Its mean bitrate is its audio's: a 150 kB picture in its tags would have tripled it."""
    import base64

    from mutagen.flac import Picture
    from mutagen.oggopus import OggOpus

    from melrestore.container import encoder_settings

    src = write(tmp_path / "in.opus", chord(3.0, 48000, 2), 48000, "OPUS", "OGG")
    plain = encoder_settings(src, "OGG")
    tagged, picture = OggOpus(src), Picture()
    picture.type, picture.mime, picture.data = 3, "image/png", np.random.default_rng(0).bytes(150_000)
    tagged["metadata_block_picture"] = [base64.b64encode(picture.write()).decode()]
    tagged.save()
    assert src.stat().st_size > 3 * 150_000 // 2 and encoder_settings(src, "OGG") == plain


def test_an_mp3_keeps_its_tags_byte_for_byte(tmp_path, interp_engine):
    """ID3v2.3 with frames mutagen would translate or drop, an APEv2 tag and an ID3v1 tag: all kept
    as they were, around the re-encoded frames."""
    from mutagen.apev2 import APEv2
    from mutagen.id3 import APIC, ID3, TIT2, TXXX, TYER

    src = write(tmp_path / "in.mp3", _damaged_chord(seconds=4.0), 44100, fmt="MP3", subtype="MPEG_LAYER_III")
    tags = ID3()
    tags.add(TIT2(encoding=1, text="Mutilated Mime"))
    tags.add(TYER(encoding=1, text="2006"))  # v2.3 only: mutagen's v2.4 writes TDRC instead
    tags.add(TXXX(encoding=1, desc="REPLAYGAIN_TRACK_GAIN", text="-3.2 dB"))
    tags.add(APIC(encoding=1, mime="image/png", type=3, desc="front cover", data=_picture().data))
    ape = APEv2()
    ape["Title"] = "Mutilated Mime"
    ape.save(src)
    tags.save(src, v1=2, v2_version=3)  # the ID3v1 tag after the APEv2 one
    (tmp_path / "in.gaps.json").write_text('{"gaps": [{"start": 0.9, "end": 0.95}]}')  # whatever the encoder smeared
    out = tmp_path / "out.mp3"
    assert repair_file(interp_engine, src, out).status == "repaired"
    with open(src, "rb") as before, open(out, "rb") as after:
        (head, end), (out_head, out_end) = (_mp3_tag_spans(f, os.fstat(f.fileno()).st_size) for f in (before, after))
    data, repaired = src.read_bytes(), out.read_bytes()
    assert data[:head].startswith(b"ID3\x03") and repaired[:out_head] == data[:head]  # ID3v2.3, as it was
    assert data[end:].startswith(b"APETAGEX") and repaired[out_end:] == data[end:]  # APEv2, then ID3v1
    assert repaired[-128:].startswith(b"TAG") and sf.info(out).duration == pytest.approx(4.0, abs=0.05)


@pytest.mark.parametrize("name,fmt,subtype,encoder,keeps", [
    ("cbr.mp3", "MP3", "MPEG_LAYER_III", dict(compression_level=0.0, bitrate_mode="CONSTANT"), "320 kbps, constant"),
    ("vbr.mp3", "MP3", "MPEG_LAYER_III", dict(compression_level=0.2, bitrate_mode="VARIABLE"), "LAME's -V 2"),
    ("rich.ogg", "OGG", "VORBIS", dict(compression_level=0.1), "its nominal bitrate"),
    ("rich.opus", "OGG", "OPUS", dict(compression_level=0.5), "its mean bitrate"),
])
def test_a_lossy_file_is_encoded_again_at_its_own_bitrate(tmp_path, interp_engine, name, fmt, subtype, encoder, keeps):
    import mutagen

    rate = 48000 if subtype == "OPUS" else 44100  # Opus has no 44.1 kHz
    src = tmp_path / name
    sf.write(src, _damaged_chord(seconds=3.0, rate=rate).T, rate, format=fmt, subtype=subtype, **encoder)
    # Marked by hand: a dropout made before lossy encoding is not always exact zeros once decoded.
    src.with_name(src.stem + ".gaps.json").write_text(json.dumps({"gaps": [{"start": GAP[0] / rate, "end": GAP[1] / rate}]}))
    out = tmp_path / "out" / name
    out.parent.mkdir()
    assert repair_file(interp_engine, src, out).status == "repaired"
    before, after = mutagen.File(src).info, mutagen.File(out).info
    bitrate = lambda path, info: getattr(info, "bitrate", 0) or path.stat().st_size * 8 / info.length  # noqa: E731 (Opus: its mean)
    # libsndfile's defaults: about 160k VBR, 128k, 123k; VBR and Opus: the content moves it a little.
    assert bitrate(out, after) == pytest.approx(bitrate(src, before), rel=0.05), keeps
    if fmt == "MP3":
        assert (after.bitrate_mode, after.encoder_settings) == (before.bitrate_mode, before.encoder_settings)


@pytest.mark.parametrize("subtype", ["ALAW", "ULAW"])
def test_a_companded_wav_is_repaired_and_every_other_sample_kept(tmp_path, interp_engine, subtype):
    # A-law has no zero: its digital silence decodes to 8 16-bit steps, which is still a dropout.
    src = write(tmp_path / "in.wav", _damaged_chord(), 44100, subtype)
    out = tmp_path / "out.wav"
    report = repair_file(interp_engine, src, out)
    assert report.status == "repaired" and [(g["start"], g["end"]) for g in report.gaps] == [GAP]
    before, after = sf.read(src, dtype="int16"), sf.read(out, dtype="int16")
    keep = np.ones(len(before[0]), bool)
    keep[GAP[0] : GAP[1]] = False
    assert sf.info(out).subtype == subtype and np.array_equal(before[0][keep], after[0][keep])


def test_adpcm_is_reported_lossy_and_gsm_is_read_in_order(tmp_path):
    (tmp_path / "in").mkdir()
    write(tmp_path / "in" / "ima.wav", _damaged_chord(), 44100, "IMA_ADPCM")
    write(tmp_path / "in" / "gsm.wav", _damaged_chord(seconds=6.0, rate=8000, channels=1), 8000, "GSM610")  # cannot seek
    result = run("batch", tmp_path / "in", "-o", tmp_path / "out", "--workers", "1", *INTERP)
    files = {f["path"]: f for f in json.loads((tmp_path / "out" / REPORT_NAME).read_text())["files"]}
    assert files["ima.wav"]["status"] == "repaired" and "WAV/IMA_ADPCM is lossy" in files["ima.wav"]["message"]
    assert "(OGG, MP3 and ADPCM are lossy)" in result.output and "ima.wav" in result.output
    assert files["gsm.wav"]["status"] in ("repaired", "unchanged")  # read, where it used to fail on a seek


def _with_id3(path, title="ID3 Title"):
    """``path`` with an ID3 chunk added (``id3 `` in a WAV, ``ID3 `` in an AIFF), as taggers add it."""
    import mutagen
    from mutagen.id3 import TIT2, TXXX

    tagged = mutagen.File(path)
    tagged.add_tags()
    tagged.tags.add(TIT2(encoding=3, text=title))
    tagged.tags.add(TXXX(encoding=3, desc="REPLAYGAIN_TRACK_GAIN", text="-3.2 dB"))
    tagged.save()
    return path


def _chunks(path):
    """``(id, the whole chunk's bytes)`` of each chunk of a RIFF WAV or an AIFF file, in order."""
    data = path.read_bytes()
    order = "<" if data[:4] == b"RIFF" else ">"
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        end = pos + 8 + struct.unpack(order + "I", data[pos + 4 : pos + 8])[0]
        end += end & 1
        chunks.append((data[pos : pos + 4], data[pos:end]))
        pos = end
    return chunks


@pytest.mark.parametrize("fmt,subtype,ext,id3", [
    ("WAV", "ALAW", "wav", True), ("WAV", "ULAW", "wav", True), ("WAV", "ULAW", "wav", False),
    ("AIFF", "ULAW", "aifc", True), ("AIFF", "ALAW", "aifc", False),
])
def test_a_law_and_u_law_files_are_patched_in_place_keeping_every_chunk(tmp_path, interp_engine, fmt, subtype, ext, id3):
    """G.711 encodes each sample alone in a byte: the gap's bytes are patched like PCM, every other
    byte (LIST/INFO or NAME/AUTH, an iXML or ANNO chunk, ID3) is kept.  They were re-encoded, and
    their tags were lost, or the file failed on its ID3 chunk."""
    src = _tagged(tmp_path / f"in.{ext}", fmt, subtype)
    if id3:
        _with_id3(src)
    out = tmp_path / f"out.{ext}"
    _repair_and_check_only_the_gap_changed(interp_engine, src, out)
    assert sf.info(out).subtype == subtype
    with sf.SoundFile(out) as f:
        assert (f.title, f.artist) == ("Mutilated Mime", "Muldjord")


@pytest.mark.parametrize("subtype", ["ALAW", "ULAW"])
def test_a_law_and_u_law_fills_are_clipped_to_full_scale(subtype):
    """libsndfile 1.2 encodes a float past full scale to a wrong code (1.01 in A-law: a negative
    sample) and crashes on NaN; the fill is clipped, then rounded to a code."""
    codes = audio_io.quantise(np.array([[1.2, -1.2, 1.0, -1.0, np.nan]]), subtype)[:, 0]
    assert codes[0] == codes[2] > 0.9 and codes[1] == codes[3] < -0.9 and codes[4] == audio_io.quantise(np.zeros((1, 1)), subtype)[0, 0]


@pytest.mark.parametrize("fmt,subtype,ext", [("WAV", "IMA_ADPCM", "wav"), ("WAV", "MS_ADPCM", "wav"), ("AIFF", "IMA_ADPCM", "aifc")])
def test_an_adpcm_file_keeps_every_chunk_around_its_reencoded_samples(tmp_path, interp_engine, fmt, subtype, ext):
    """ADPCM is coded in blocks and written again by libsndfile: the input's chunks that are not
    the audio's (LIST/INFO or NAME/AUTH/ANNO before the samples, an iXML or APPL chunk and ID3
    after them) are carried over byte for byte, in their places.  The file failed on its ID3
    chunk, and without one lost the others."""
    import mutagen

    audio = _damaged_chord()
    src = tmp_path / f"in.{ext}"
    with sf.SoundFile(src, "w", 44100, 2, subtype=subtype, format=fmt) as f:
        f.title, f.artist, f.comment = "Mutilated Mime", "Muldjord", "Info Comment"
        f.write(audio.T)
    _add_chunk(src, *((b"iXML", b"<note>kept</note>") if fmt == "WAV" else (b"APPL", b"mlrs<note>kept</note>")))
    _with_id3(src)
    out = tmp_path / f"out.{ext}"
    report = repair_file(interp_engine, src, out)
    assert report.status == "repaired", report.message
    audio_chunks = {b"fmt ", b"fact", b"data", b"FVER", b"COMM", b"SSND"}
    kept = [(i, c) for i, c in _chunks(src) if i not in audio_chunks]
    assert len(kept) >= 3 and [(i, c) for i, c in _chunks(out) if i not in audio_chunks] == kept
    assert [i for i, _ in _chunks(out)] == [i for i, _ in _chunks(src)]  # each on its side of the samples
    with sf.SoundFile(out) as f:
        assert (f.title, f.artist, f.comment) == ("Mutilated Mime", "Muldjord", "Info Comment")
    assert mutagen.File(out).tags["TIT2"].text == ["ID3 Title"]
    before, after = sf.read(src, dtype="float32")[0], sf.read(out, dtype="float32")[0]
    keep = np.ones(len(before), bool)
    keep[GAP[0] : GAP[1]] = False
    assert sf.info(out).subtype == subtype and len(after) == len(before)
    assert np.sqrt(np.mean((after[keep] - before[keep]) ** 2)) < 0.01  # lossy: close, not exact
    assert np.sqrt(np.mean(after[GAP[0] : GAP[1]] ** 2)) > 0.02  # the gap really got music


def _flac_parts(data: bytes):
    """A FLAC file's leading ID3v2 tag (b"" without one) and its metadata blocks ``(type, body)``."""
    id3 = 0
    if data[:3] == b"ID3":
        id3 = 10 + ((data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9])
    assert data[id3 : id3 + 4] == b"fLaC"
    blocks, pos, last = [], id3 + 4, False
    while not last:
        last, kind, size = bool(data[pos] & 0x80), data[pos] & 0x7F, int.from_bytes(data[pos + 1 : pos + 4], "big")
        blocks.append((kind, data[pos + 4 : pos + 4 + size]))
        pos += 4 + size
    return data[:id3], blocks


def test_a_flac_keeps_its_metadata_blocks_and_leading_id3_tag_byte_for_byte(tmp_path, interp_engine):
    """A Vorbis comment that is not UTF-8 (Latin-1, as old taggers wrote it) came out with U+FFFD in
    place of each such byte, written anew by mutagen, and an ID3v2 tag in front was dropped."""
    from mutagen.flac import FLAC
    from mutagen.id3 import ID3, TIT2, TXXX

    src = write(tmp_path / "in.flac", _damaged_chord(), 44100, "PCM_16")
    tagged = FLAC(src)
    tagged["artist"] = "Muldjord"
    tagged.add_picture(_picture())
    tagged.save()
    head, blocks = _flac_parts(src.read_bytes())
    vendor, comments = b"reference libFLAC", [b"title=Caf\xe9!!", b"artist=Muldjord"]
    latin1 = (struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", len(comments))
              + b"".join(struct.pack("<I", len(c)) + c for c in comments))
    data = bytearray(src.read_bytes())
    at = data.index(next(body for kind, body in blocks if kind == 4)) - 4
    data[at : at + 4 + len(next(body for kind, body in blocks if kind == 4))] = bytes([data[at]]) + len(latin1).to_bytes(3, "big") + latin1
    src.write_bytes(bytes(data))
    id3 = ID3()
    id3.add(TIT2(encoding=3, text="ID3 Title"))
    id3.add(TXXX(encoding=3, desc="REPLAYGAIN_TRACK_GAIN", text="-3.2 dB"))
    id3.save(src, v2_version=3)  # in front of the FLAC stream
    out = tmp_path / "out.flac"
    report = repair_file(interp_engine, src, out)
    assert report.status == "repaired", report.message
    (head, blocks), (out_head, out_blocks) = _flac_parts(src.read_bytes()), _flac_parts(out.read_bytes())
    assert head.startswith(b"ID3\x03") and out_head == head
    own = (0, 3)  # STREAMINFO, SEEKTABLE: the new stream's own
    assert [b for b in out_blocks if b[0] not in own] == [b for b in blocks if b[0] not in own]
    assert b"title=Caf\xe9!!" in out.read_bytes() and {4, 6} <= {kind for kind, _ in out_blocks}
    before, after = audio_io.read(src), audio_io.read(out)
    keep = np.ones(before.frames, bool)
    keep[GAP[0] : GAP[1]] = False
    assert np.array_equal(before.samples[keep], after.samples[keep])
    assert np.sqrt(np.mean(after.as_float()[:, GAP[0] : GAP[1]] ** 2)) > 0.02  # the gap really got music


# -- 2. failures are never hidden -----------------------------------------------


class _Raises:
    def vocode(self, log_mel, segment, missing, frontend):
        raise RuntimeError("out of memory")


def test_a_file_with_a_failed_gap_gets_no_output(tmp_path):
    from melrestore.plugins.lsar import LSAR

    audio = chord(2.0, 44100, 2)
    audio[:, 20000:20200] = 0.0  # 4.5 ms: LSAR fills it
    audio[:, GAP[0] : GAP[1]] = 0.0  # the Mel pipeline's, whose vocoder fails
    src = write(tmp_path / "in.wav", audio, 44100)
    target = tmp_path / "out.wav"
    target.write_bytes(b"output of an earlier run")
    engine = Engine(Interpolation(), _Raises(), MelSettings(), detectors=[DigitalSilence()], short_gap_repairer=LSAR(), short_gap_ms=20)
    report = repair_file(engine, src, target)
    assert report.status == "failed" and "out of memory" in report.message
    # LSAR filled the first gap, but no file holds that fill: it is not counted as repaired.
    assert [g["status"] for g in report.gaps] == ["failed", "failed"]
    assert report.gaps[0]["message"] == "filled, but the file was not written"
    assert not target.exists()


def test_a_file_that_cannot_be_written_repairs_none_of_its_gaps(tmp_path, interp_engine):
    src = write(tmp_path / "in.wav", _damaged_chord(), 44100)
    (tmp_path / "not-a-folder").write_text("")
    report = repair_file(interp_engine, src, tmp_path / "not-a-folder" / "out.wav")
    assert report.status == "failed"
    assert report.message == f"cannot write {tmp_path / 'not-a-folder' / 'out.wav'}: {tmp_path / 'not-a-folder'} is a file, not a folder"
    assert [g["status"] for g in report.gaps] == ["failed"]
    summary = summary_of([report], 1.0)
    assert (summary["gaps_found"], summary["gaps_repaired"], summary["gaps_failed"]) == (1, 0, 1)


def test_samples_patched_where_they_do_not_read_back_fail_the_file_and_leave_no_output(tmp_path, interp_engine, monkeypatch):
    """The fills are patched into a byte copy where the header says the samples lie, and read back
    before the copy is moved into place: a header misread (here the data offset one frame off)
    fails the file instead of writing a click of shifted samples."""
    from dataclasses import replace

    src = write(tmp_path / "in.wav", _damaged_chord(), 44100)
    data = src.read_bytes()
    real = audio_io.pcm_layout

    def one_frame_off(path):
        layout = real(path)
        return replace(layout, data_offset=layout.data_offset + 2 * 2)  # a frame: two channels of 16 bits

    monkeypatch.setattr(audio_io, "pcm_layout", one_frame_off)
    target = tmp_path / "out.wav"
    report = repair_file(interp_engine, src, target)
    assert report.status == "failed" and "did not read back" in report.message, report.message
    assert [g["status"] for g in report.gaps] == ["failed"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"] and src.read_bytes() == data  # no output, no temporary


def test_a_write_error_names_the_output_not_its_temporary_when_out_is_relative(tmp_path, monkeypatch):
    folder = tmp_path / "in" / "sub"
    write(folder / "gap.wav", _damaged_chord(), 44100)
    write(folder / "clean.wav", chord(2.0, 44100, 2), 44100)
    (tmp_path / "out" / "sub").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    with _unwritable(tmp_path / "out" / "sub"):
        result = run("batch", "in", "-o", "out", "--workers", "1", *INTERP)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    for name in ("clean.wav", "gap.wav"):  # copied, and repaired
        line = next(line for line in result.output.splitlines() if line.startswith(f"FAILED sub/{name}: "))
        assert line.startswith(f"FAILED sub/{name}: cannot write {os.path.join('out', 'sub', name)}: "), line
        assert TEMP_SUFFIX not in line and str(tmp_path) not in line, line


def _at_most_bytes(limit: int):
    """For a child process: files it writes may grow to ``limit`` bytes, then a write fails (EFBIG)."""
    import resource
    import signal

    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the failing write returns an error instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    return limited


def test_a_write_that_libsndfile_cannot_finish_names_the_output_and_the_systems_reason(tmp_path):
    """Outputs libsndfile encodes (FLAC, Ogg, MP3) fail with its bare "System error." when the disk
    fills up: the report gives the system's reason instead, as for the files patched in place."""
    folder, ext = tmp_path / "in", "flac"
    write(folder / f"gap.{ext}", _damaged_chord(), 44100)
    result = subprocess.run([sys.executable, "-m", "melrestore", "batch", "in", "-o", "out", *INTERP], cwd=tmp_path,
                            capture_output=True, text=True, preexec_fn=_at_most_bytes(8000))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"FAILED gap.{ext}: cannot write {os.path.join('out', f'gap.{ext}')}: File too large" in result.stdout, result.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [REPORT_NAME]  # no output, no temporary


@pytest.mark.parametrize("ext", ["wav", "flac"])
@pytest.mark.parametrize("change", ["replaced", "truncated", "written to", "replaced, no gap filled"])
def test_an_input_that_changes_while_it_is_repaired_fails_and_gets_no_output(tmp_path, ext, change):
    """The output is written from the input by name (a byte copy, its layout and tags): an input
    replaced, cut short or written to meanwhile must not give a mix of two files reported as repaired.
    Written to in place, it is the same file of the same size: only its modification time tells."""
    folder, out = tmp_path / "in", tmp_path / "out"
    song = write(folder / f"song.{ext}", _damaged_chord(2.0), 44100)
    newer = _damaged_chord(3.0)
    newer[:, 90000:92000] = 0.0
    newer = write(tmp_path / f"newer.{ext}", newer, 44100)
    # With gaps longer than max_gap_seconds skipped, nothing is filled and the input is copied unchanged.
    options = PipelineOptions(inpainter="interpolation", max_gap_seconds=0.01 if "no gap" in change else 3.0)

    changed = []

    def meanwhile(name, fraction):  # once past the scan (the input was read), before the output is written
        if changed or fraction <= SCAN_SHARE:
            return
        changed.append(name)
        if change.startswith("replaced"):
            os.replace(newer, song)
        elif change == "written to":  # its last samples overwritten, as an editor saving in place would
            size = song.stat().st_size
            with open(song, "r+b") as f:
                f.seek(size - 4000)
                f.write(bytes(range(256)) * 15 + bytes(160))
            assert song.stat().st_size == size
        else:
            with open(song, "r+b") as f:
                f.truncate(song.stat().st_size // 2)

    entry = run_batch(folder, out, options, workers=1, on_progress=meanwhile)["files"][0]
    assert changed and entry["status"] == "failed"
    assert entry["message"] == f"{song} changed while it was being repaired: run again"
    assert sorted(p.name for p in out.iterdir()) == [REPORT_NAME]
    if change == "replaced":  # as it says: run again, and the file now there is repaired
        again = run_batch(folder, out, options, workers=1)["files"][0]
        assert again["status"] == "repaired" and [g["start"] for g in again["gaps"]] == [GAP[0], 90000]
        assert audio_io.read(out / f"song.{ext}").frames == 3 * 44100


def test_a_second_run_into_the_same_output_stops_before_touching_it(tmp_path):
    """A batch started twice (or an overlapping scheduled job) must not remove the first run's
    temporaries mid-write nor redo its files; a lock left by a killed run blocks nothing."""
    src = _one_clip(tmp_path)
    out = tmp_path / "out"
    with claim_output(out):
        stale = out / ".in-progress.wav.melrestore-tmp"  # the first run's file being written
        stale.write_bytes(b"half")
        result = run("batch", src.parent, "-o", out, "--workers", "1", *INTERP)
        assert result.exit_code == 1 and f"(process {os.getpid()}) is writing into" in result.output
        assert stale.exists() and not (out / src.name).exists() and not (out / REPORT_NAME).exists()
    assert not any(p.name.endswith(".lock") for p in out.iterdir())  # released, and its file removed
    (out / f".{REPORT_NAME}.lock").write_text("99999")  # what a run killed with SIGKILL leaves
    result = run("batch", src.parent, "-o", out, "--workers", "1", *INTERP)
    assert result.exit_code == 0, result.output
    assert (out / src.name).exists() and not any(p.name.endswith(".lock") for p in out.iterdir())


@contextlib.contextmanager
def _unwritable(path):
    """``path`` readable but not writable by this process, as another user's file of mode 0644 (or
    folder of 0755) is: mode 0444 (0555), or as root, whom modes do not stop, the immutable attribute."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", path], capture_output=True).returncode != 0:
        pytest.skip("as root only the immutable attribute makes a file unwritable, and chattr +i fails here")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", path], check=True)


def test_a_lock_or_journal_left_by_another_users_killed_run_is_no_traceback(tmp_path):
    """The lock is taken on a read-only descriptor (flock needs no write access); a journal that
    cannot be appended to is one line naming it."""
    src = _one_clip(tmp_path)
    out = tmp_path / "out"
    out.mkdir(mode=0o777)
    lock = out / f".{REPORT_NAME}.lock"
    lock.write_text("99999")
    with _unwritable(lock):
        result = run("batch", src.parent, "-o", out, "--workers", "1", *INTERP)
        assert result.exit_code == 0 and result.exception is None, result.output
        assert (out / src.name).is_file()
    journal = out / ".melrestore-journal.jsonl"
    journal.write_text("")
    with _unwritable(journal):
        result = run("batch", src.parent, "-o", out, "--workers", "1", "--overwrite", *INTERP)
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
        assert result.output.strip().splitlines()[-1].startswith(f"Error: cannot write the journal {journal}: ")


def test_a_whole_run_and_a_sharded_one_never_write_into_one_output_at_once(tmp_path):
    """The shards of one run write into OUT together; a whole run would remove their temporaries
    mid-write (and they its files), so neither starts while the other writes."""
    from melrestore.reports import report_name

    src = _one_clip(tmp_path)
    out = tmp_path / "out"
    with claim_output(out, report_name("1-of-2"), owned=set()):  # shard 1 of 2, writing
        whole = run("batch", src.parent, "-o", out, "--workers", "1", *INTERP)
        assert whole.exit_code == 1 and f"(process {os.getpid()}) is writing into" in whole.output
        assert not (out / src.name).exists()
        other_shard = run("batch", src.parent, "-o", out, "--workers", "1", "--shard", "2/2", *INTERP)
        assert other_shard.exit_code == 0, other_shard.output  # shards together are fine
        # ... of one run: an array resubmitted with another count would repair the same files at once.
        other_count = run("batch", src.parent, "-o", out, "--workers", "1", "--shard", "1/3", *INTERP)
        assert other_count.exit_code == 1 and "(a shard of 2, where this one is of 3" in other_count.output, other_count.output
    assert run("batch", src.parent, "-o", out, "--workers", "1", "--shard", "1/3", *INTERP).exit_code == 0  # once it has ended
    with claim_output(out):  # a whole run, writing
        shard = run("batch", src.parent, "-o", out, "--workers", "1", "--shard", "1/2", *INTERP)
        assert shard.exit_code == 1 and "is writing into" in shard.output


def test_a_rerun_redoes_failed_files_and_keeps_earlier_entries(tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(EXAMPLES / "recordings", folder)
    sidecar = folder / "mutilated-mime-c.gaps.json"
    sidecar.write_text('{"gaps": [{"start": 1.0}]}')  # malformed: that file fails
    out = tmp_path / "out"
    first = run("batch", folder, "-o", out, "--workers", "1", *INTERP)
    assert first.exit_code == 1
    assert not (out / "mutilated-mime-c.wav").exists()
    again = run("batch", folder, "-o", out, "--workers", "1", *INTERP)
    assert again.exit_code == 1, "a rerun must not hide the failure"
    sidecar.unlink()
    fixed = run("batch", folder, "-o", out, "--workers", "1", *INTERP)
    assert fixed.exit_code == 0, fixed.output
    files = {f["path"]: f for f in json.loads((out / REPORT_NAME).read_text())["files"]}
    assert files["mutilated-mime-c.wav"]["status"] == "unchanged" and not files["mutilated-mime-c.wav"]["from_earlier_run"]
    a = files["mutilated-mime-a.wav"]
    assert a["status"] == "repaired" and a["from_earlier_run"] and len(a["gaps"]) == 3
    assert files["more/mutilated-mime-b.flac"]["status"] == "repaired"


def test_an_output_no_record_vouches_for_is_redone(tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(EXAMPLES / "recordings", folder)
    out = tmp_path / "out"
    out.mkdir()
    (out / "mutilated-mime-a.wav").write_bytes(b"half of a file from a killed run")
    assert run("batch", folder, "-o", out, "--workers", "1", *INTERP).exit_code == 0
    assert audio_io.read(out / "mutilated-mime-a.wav").frames == sf.info(folder / "mutilated-mime-a.wav").frames


# -- 6. folders -----------------------------------------------------------------


def test_out_inside_in_and_in_inside_out_are_refused(tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(EXAMPLES / "recordings", folder)
    before = sorted(folder.rglob("*"))
    for out in (folder / "out", folder, folder / "more"):
        result = run("batch", folder, "-o", out, *INTERP)
        assert result.exit_code == 2 and f"must not be the input folder {folder}" in result.output
    assert sorted(folder.rglob("*")) == before
    result = run("batch", folder / "more", "-o", folder, *INTERP)
    assert result.exit_code == 2 and "inside" in result.output
    assert sorted(folder.rglob("*")) == before


def _without_root(folder):
    """A command prefix under which ``folder`` (mode 000, or 644) cannot be listed or entered, as for any user but root:
    none for a user; for root, a user namespace in which it is uid 1000 without root's capabilities
    (``unshare``), or else the user nobody (``setpriv``); None if neither stops it here."""
    if os.geteuid() != 0:
        return []
    candidates = [["unshare", "--user", "--map-user=1000"], ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]]
    for prefix in candidates:
        if shutil.which(prefix[0]) is None:
            continue
        probe = subprocess.run([*prefix, sys.executable, "-c", "import os, sys, melrestore; d = sys.argv[1]; "
                                "[os.stat(os.path.join(d, n)) for n in os.listdir(d)]", str(folder)],
                               capture_output=True, text=True)
        if "PermissionError" in probe.stderr:
            return prefix
    return None


@pytest.mark.parametrize("mode", [0o000, 0o644])  # 644: listed, but not entered (a traceback from is_file)
def test_a_folder_that_cannot_be_read_fails_naming_it_and_the_run_exits_1(mode):
    # Not tmp_path: the user nobody (setpriv) could not enter root's pytest folder.
    with tempfile.TemporaryDirectory() as base:
        os.chmod(base, 0o777)
        folder = Path(base) / "in"
        write(folder / "good.wav", _damaged_chord(), 44100)
        write(folder / "locked" / "x.wav", _damaged_chord(), 44100)
        write(folder / "locked" / "y.m4a", _damaged_chord(), 44100, fmt="WAV")  # named like audio it does not read
        run("batch", folder, "-o", Path(base) / "out", *INTERP)  # while it could be read: locked/x.wav's output is made
        for made in [Path(base) / "out", *(Path(base) / "out").rglob("*")]:
            made.chmod(0o777)
        (folder / "locked").chmod(mode)
        try:
            prefix = _without_root(folder / "locked")
            if prefix is None:
                pytest.skip("running as root, and neither unshare --user nor setpriv (as nobody) can take root's rights away here")

            def batch(*args):
                command = [*prefix, sys.executable, "-c", "from melrestore.cli import cli; cli()", "batch", *map(str, args), *INTERP]
                return subprocess.run(command, capture_output=True, text=True, timeout=300)

            result = batch(folder, "-o", Path(base) / "out")
            assert result.returncode == 1, result.stdout + result.stderr
            assert "FAILED locked: cannot read the folder: Permission denied (no file in it was checked)" in result.stdout
            report = json.loads((Path(base) / "out" / REPORT_NAME).read_text())
            assert [(f["path"], f["status"]) for f in report["files"]] == [("good.wav", "repaired"), ("locked", "failed")]
            assert report["summary"]["failed"] == 1
            assert "orphaned" not in report  # its input may well be there still
            # A glob's ** says so too; a path through the folder is refused in one line.
            result = batch(f"{folder}/**/*.wav", "-o", Path(base) / "out3")
            assert result.returncode == 1 and f"FAILED {folder / 'locked'}: cannot read the folder" in result.stdout, result.stdout
            result = batch(folder / "locked" / "x.wav", "-o", Path(base) / "out4")
            assert result.returncode == 2 and f"cannot read {folder / 'locked' / 'x.wav'}: Permission denied" in result.stderr, result.stderr
            # The input folder itself: not "no audio files in ...", which it cannot know.
            result = batch(folder / "locked", "-o", Path(base) / "out2")
            assert result.returncode == 1, result.stdout + result.stderr
            assert f"FAILED {folder / 'locked'}: cannot read the folder: Permission denied" in result.stdout
        finally:
            (folder / "locked").chmod(0o755)


def test_evaluate_and_train_say_which_folder_they_cannot_read():
    """Scores or a model from part of a folder would pass for the whole's: evaluate refuses (exit 2),
    train names it among its data problems (here with its "too little data")."""
    from conftest import SMALL_TRAINING_CONFIG

    with tempfile.TemporaryDirectory() as base:
        os.chmod(base, 0o777)
        folder = Path(base) / "in"
        write(folder / "good.wav", chord(3.0, 44100, 2), 44100)
        write(folder / "locked" / "x.wav", chord(3.0, 44100, 2), 44100)
        (folder / "locked").chmod(0)
        config = Path(base) / "small.toml"
        config.write_text(SMALL_TRAINING_CONFIG)
        try:
            prefix = _without_root(folder / "locked")
            if prefix is None:
                pytest.skip("running as root, and neither unshare --user nor setpriv (as nobody) can take root's rights away here")

            def melrestore(*args):
                command = [*prefix, sys.executable, "-c", "from melrestore.cli import cli; cli()", *map(str, args)]
                return subprocess.run(command, capture_output=True, text=True, timeout=300)

            result = melrestore("evaluate", folder, "-o", Path(base) / "eval", "--no-visqol", "--gaps", "100")
            assert result.returncode == 2 and f"cannot read the folder {folder / 'locked'}: Permission denied" in result.stderr, result.stderr
            result = melrestore("train", "--config", config, "--data", folder, "-o", Path(base) / "run")
            assert f"cannot read the folder {folder / 'locked'}: Permission denied (no file in it is used)" in result.stderr, result.stderr
        finally:
            (folder / "locked").chmod(0o755)


# -- 7. errors outside one file -------------------------------------------------


def test_an_unwritable_output_folder_is_one_line(tmp_path):
    (tmp_path / "a-file").write_text("")
    result = run("batch", EXAMPLES / "recordings", "-o", tmp_path / "a-file" / "out", *INTERP)
    assert result.exit_code == 1 and "cannot write to" in result.output
    assert "Traceback" not in result.output


def test_a_report_that_cannot_be_written_is_said_and_leaves_no_temporaries(tmp_path):
    out = tmp_path / "out"
    (out / REPORT_NAME).mkdir(parents=True)  # the report's place is taken
    (out / "more").mkdir()
    stale = out / "more" / ".mutilated-mime-b.flac.x1y2.melrestore-tmp"
    stale.write_bytes(b"left by a killed run")
    result = run("batch", EXAMPLES / "recordings", "-o", out, "--workers", "1", *INTERP)
    assert result.exit_code == 1
    assert "cannot write the report" in result.output
    assert not list(out.rglob("*melrestore-tmp*"))
    assert (out / "mutilated-mime-a.wav").is_file()


# -- 8. silent or vague cases ---------------------------------------------------


def _one_clip(tmp_path, name="song.wav"):
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    return write(folder / name, _damaged_chord(), 44100)


@pytest.mark.parametrize("labels, says", [
    ("1,5\t1.6\tclick\n2.0\t2.1\tpop\n", "line 1"),  # a malformed first line
    ("5.0\t5.5\tdropout\n", "after the end"),  # a label past the end: the file is 2 s long
])
def test_a_bad_label_file_fails_the_file_clearly(tmp_path, labels, says):
    src = _one_clip(tmp_path)
    src.with_suffix(".txt").write_text(labels)
    report = run_batch(src.parent, tmp_path / "out", PipelineOptions(inpainter="interpolation"))
    entry = report["files"][0]
    assert entry["status"] == "failed" and says in entry["message"]
    assert not (tmp_path / "out" / "song.wav").exists()


def test_truncated_files_links_folders_and_linked_folders_named_like_audio_are_reported(tmp_path):
    src = _one_clip(tmp_path)
    data = src.read_bytes()
    (src.parent / "cut.wav").write_bytes(data[: len(data) * 2 // 3])
    (src.parent / "empty.flac").write_bytes(b"")  # a copy that never got its bytes
    (src.parent / "gone.flac").symlink_to(tmp_path / "nowhere.flac")
    (src.parent / "album.wav").mkdir()
    shutil.copy(src, src.parent / "album.wav" / "inner.wav")
    (tmp_path / "ext").mkdir()
    shutil.copy(src, tmp_path / "ext" / "outer.wav")
    (src.parent / "Live.wav").symlink_to("../ext")  # a linked folder: not entered
    result = run("batch", src.parent, "-o", tmp_path / "out", "--workers", "1", *INTERP)
    assert result.exit_code == 1  # the broken link and the empty file
    files = {f["path"]: f for f in json.loads((tmp_path / "out" / REPORT_NAME).read_text())["files"]}
    assert "truncated" in files["cut.wav"]["warnings"][0]
    assert files["empty.flac"]["status"] == "failed" and "empty (0 bytes)" in files["empty.flac"]["message"]
    assert files["gone.flac"]["status"] == "failed" and "broken symbolic link" in files["gone.flac"]["message"]
    assert files["album.wav"]["status"] == "skipped" and "folder" in files["album.wav"]["message"]
    assert files["album.wav/inner.wav"]["status"] == "repaired"
    assert files["Live.wav"]["status"] == "skipped" and "linked folder" in files["Live.wav"]["message"]
    assert "not processed" in files["Live.wav"]["message"] and "Live.wav/outer.wav" not in files
    assert "WARNING cut.wav: truncated" in result.output


def test_audio_in_formats_melrestore_does_not_repair_is_reported_not_passed_over(tmp_path):
    """An archive's AAC or CAF files are neither repaired nor silently left out: each is in the report."""
    src = _one_clip(tmp_path)
    for take in ("live", "live-2", "live-3", "live-4"):  # AAC, which libsndfile cannot read
        (src.parent / f"{take}.m4a").write_bytes(b"\0\0\0\x20ftypM4A ")
    sf.write(src.parent / "take.caf", _damaged_chord().T, 44100, format="CAF")
    sf.write(src.parent / "take-named.wav", _damaged_chord().T, 44100, format="CAF")
    result = run("batch", src.parent, "-o", tmp_path / "out", "--workers", "1", *INTERP)
    assert result.exit_code == 1  # the CAF named .wav
    files = {f["path"]: f for f in json.loads((tmp_path / "out" / REPORT_NAME).read_text())["files"]}
    for name in ("live.m4a", "take.caf"):
        assert files[name]["status"] == "skipped" and "not a format melrestore reads" in files[name]["message"]
    assert files["take-named.wav"]["status"] == "failed" and "holds CAF audio" in files["take-named.wav"]["message"]
    assert not (tmp_path / "out" / "take-named.wav").exists()
    assert files[src.name]["status"] == "repaired"
    assert "5 skipped" in result.output  # the four .m4a files, one line, and the .caf
    assert "skipped 4 files (live-2.m4a, live-3.m4a, live-4.m4a, ...): .m4a is not a format" in result.output
    assert "skipped take.caf: .caf is not a format" in result.output
    detected = run("detect", src.parent, *INTERP)
    assert "take.caf: skipped: .caf is not a format" in detected.output and "; 5 skipped" in detected.output


def test_samples_a_wav_header_never_counted_are_kept_and_reported(tmp_path, interp_engine):
    """A recorder that stopped before it rewrote its header: the data size says 1 s (or nothing),
    the file holds 2 s.  What the header declares is repaired; the rest is kept byte for byte and
    the report says it was not checked.  A header that gives no length at all (all ones, as a
    stream is written) is read to the end, with no warning."""
    src = write(tmp_path / "rec.wav", _damaged_chord(), 44100)
    data = bytearray(src.read_bytes())
    at = data.find(b"data") + 4
    declared = 44100 * 2 * 2  # 1 s of 16-bit stereo: the gap, at 0.9 s, is inside it
    for size, name in ((declared, "stale.wav"), (0, "unfinished.wav"), (0xFFFFFFFF, "streamed.wav")):
        data[at : at + 4] = size.to_bytes(4, "little")
        (tmp_path / name).write_bytes(data)
        report = repair_file(interp_engine, tmp_path / name, tmp_path / f"out-{name}")
        if name == "streamed.wav":
            assert report.status == "repaired" and report.warnings == []
            continue
        assert "follow the" in report.warnings[0] and "not checked for gaps" in report.warnings[0]
        assert report.status == ("repaired" if size else "unchanged")
        out = (tmp_path / f"out-{name}").read_bytes()
        assert out[at + 4 + declared :] == bytes(data[at + 4 + declared :])  # the uncounted second, as it was
    layout = audio_io.pcm_layout(_tagged(tmp_path / "tagged.wav", "WAV", "PCM_16"))  # a chunk after the samples
    assert layout.unexplained_bytes == 0


def test_a_flac_cut_short_is_repaired_as_far_as_it_decodes(tmp_path):
    audio, rate = _damaged_chord(seconds=4.0), 44100
    whole = write(tmp_path / "whole.flac", audio, rate, fmt="FLAC")
    data = whole.read_bytes()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "cut.flac").write_bytes(data[: len(data) * 5 // 8])  # the header still says 4 s
    report = run_batch(tmp_path / "in", tmp_path / "out", PipelineOptions(inpainter="interpolation"))
    entry = report["files"][0]
    assert entry["status"] == "repaired" and entry["gaps"][0]["status"] == "repaired"
    assert "truncated or damaged" in entry["warnings"][0] and "of the 4.000 s" in entry["warnings"][0]
    original, _ = sf.read(whole, dtype="int16")
    repaired, _ = sf.read(tmp_path / "out" / "cut.flac", dtype="int16")
    assert rate < len(repaired) < len(original) - rate  # what decodes, less than the header says
    outside = np.ones(len(repaired), dtype=bool)
    outside[GAP[0] : GAP[1]] = False
    assert np.array_equal(repaired[outside], original[: len(repaired)][outside])
    assert np.abs(repaired[GAP[0] : GAP[1]]).max() > 1000  # filled, not left silent


def test_a_float_file_beyond_full_scale_gets_a_fill_that_meets_it(tmp_path, interp_engine):
    """Float WAVs may hold music beyond ±1: a fill clipped to ±1 would step by 1.0 at each edge."""
    rate = 44100
    tone = (2.0 * np.sin(2 * np.pi * 100 * np.arange(2 * rate) / rate)).astype(np.float32)
    start, end = rate // 2 + 110, rate // 2 + 110 + 220  # 5 ms from near a crest
    tone[start:end] = 0.0
    src = write(tmp_path / "loud.wav", np.stack([tone, tone]), rate, "FLOAT")
    assert repair_file(interp_engine, src, tmp_path / "out.wav").status == "repaired"
    out = audio_io.read(tmp_path / "out.wav").as_float()[0]
    assert np.abs(np.diff(out[start - 5 : end + 5])).max() < 2 * np.abs(np.diff(tone[:start])).max()


def test_a_chained_ogg_or_joined_mp3s_are_never_cut_to_their_first_part(tmp_path):
    """libsndfile decodes the first stream of a chained Ogg, and the first of MP3s joined with
    `cat` (its Xing header says where the stream ends): a repair would write that part alone."""
    (tmp_path / "in").mkdir()
    first, second = _damaged_chord(seconds=3.0), chord(3.0, 44100, 2)
    parts = {"ogg": dict(fmt="OGG", subtype="VORBIS"), "mp3": dict(fmt="MP3", subtype="MPEG_LAYER_III")}
    for ext, kind in parts.items():
        for name, head in (("gap", first), ("clean", chord(3.0, 44100, 2))):
            a, b = write(tmp_path / f"a.{ext}", head, 44100, **kind), write(tmp_path / f"b.{ext}", second, 44100, **kind)
            (tmp_path / "in" / f"{name}.{ext}").write_bytes(a.read_bytes() + b.read_bytes())
    report = run_batch(tmp_path / "in", tmp_path / "out", PipelineOptions(inpainter="interpolation"))
    files = {f["path"]: f for f in report["files"]}
    for ext, says in (("ogg", "a chained Ogg file (2 streams one after another)"), ("mp3", "MPEG frames of about 3")):
        assert files[f"gap.{ext}"]["status"] == "failed" and says in files[f"gap.{ext}"]["message"]
        assert "split it into one file per stream first" in files[f"gap.{ext}"]["message"]
        assert not (tmp_path / "out" / f"gap.{ext}").exists()
        clean = files[f"clean.{ext}"]  # no gap in the part that decodes: copied whole, and said so
        assert clean["status"] == "unchanged" and says in clean["warnings"][0] and "only that part is checked" in clean["warnings"][0]
        assert (tmp_path / "out" / f"clean.{ext}").read_bytes() == (tmp_path / "in" / f"clean.{ext}").read_bytes()


def test_a_flac_damaged_in_the_middle_fails_saying_where_and_gets_no_output(tmp_path):
    rng = np.random.default_rng(1)
    audio = _damaged_chord(seconds=10.0) + 0.05 * rng.standard_normal((2, 441000)).astype(np.float32)
    (tmp_path / "in").mkdir()
    src = write(tmp_path / "in" / "damaged.flac", np.clip(audio, -1, 1), 44100, fmt="FLAC")
    data = bytearray(src.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 200] = bytes(b ^ 0x5A for b in data[middle : middle + 200])
    src.write_bytes(bytes(data))
    report = run_batch(tmp_path / "in", tmp_path / "out", PipelineOptions(inpainter="interpolation"))
    entry = report["files"][0]
    assert entry["status"] == "failed" and "damaged there?" in entry["message"]
    start, end = (float(t) for t in entry["message"].split("between ")[1].split(" s of")[0].split(" and "))
    assert start < 5.0 < end  # the damage is in the middle of the file's bytes, so of its time
    assert not (tmp_path / "out" / "damaged.flac").exists()


def test_an_mp3_cut_short_is_repaired_as_far_as_it_decodes_with_nothing_made_up(tmp_path, monkeypatch):
    monkeypatch.setattr(audio_io, "BLOCK_SAMPLES", 1 << 14)  # decoded in many blocks, as a long file is
    whole = write(tmp_path / "whole.mp3", _damaged_chord(seconds=4.0), 44100, fmt="MP3", subtype="MPEG_LAYER_III")
    data = whole.read_bytes()
    (tmp_path / "in").mkdir()
    cut = tmp_path / "in" / "cut.mp3"
    cut.write_bytes(data[: len(data) * 5 // 8])  # its Xing header still says 4 s
    decodes, _ = sf.read(cut, dtype="float32")
    report = run_batch(tmp_path / "in", tmp_path / "out", PipelineOptions(inpainter="interpolation"))
    entry = report["files"][0]
    assert entry["status"] == "repaired" and [g["status"] for g in entry["gaps"]] == ["repaired"]
    assert "truncated or damaged" in entry["warnings"][0] and "of the 4.000 s" in entry["warnings"][0]
    assert entry["duration_s"] == pytest.approx(len(decodes) / 44100, abs=1e-3) and len(decodes) < 3 * 44100
    repaired, _ = sf.read(tmp_path / "out" / "cut.mp3", dtype="float32")
    assert len(repaired) == len(decodes)  # no tail of silence or of a stale block past the cut


def test_an_mp3_decoded_in_many_blocks_shows_no_false_dropout(tmp_path, monkeypatch):
    # libsndfile's MP3 seek is not sample-exact even to where it stands: a read after one began
    # with up to an MPEG frame of zeros at every block, which detection took for dropouts.
    monkeypatch.setattr(audio_io, "BLOCK_SAMPLES", 1 << 14)
    song = write(tmp_path / "in" / "song.mp3", chord(4.0, 44100, 2), 44100, fmt="MP3", subtype="MPEG_LAYER_III")
    decoded, _ = sf.read(song, dtype="float32", always_2d=True)  # one read, no seek
    with audio_io.AudioFile(song) as audio:
        assert np.array_equal(audio.read(0, audio.frames), decoded)
    report = run_batch(tmp_path / "in", tmp_path / "out", PipelineOptions(inpainter="interpolation"))
    assert report["files"][0]["status"] == "unchanged" and report["files"][0]["gaps"] == []


def test_an_mp3_that_cannot_be_decoded_for_want_of_room_says_where_and_what_to_do(tmp_path):
    """An MP3 is decoded into the system's temporary folder first: a full one must say so."""
    song = write(tmp_path / "song.mp3", chord(4.0, 44100, 2), 44100, fmt="MP3", subtype="MPEG_LAYER_III")
    # A real write failure: the process may write no file past 100 kB (EFBIG instead of a full disk).
    code = textwrap.dedent(f"""
        import resource, signal
        from melrestore.audio import AudioError, AudioFile
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        try:
            AudioFile({str(song)!r})
        except AudioError as exc:
            print(exc)
        """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert f"cannot decode the file into the temporary folder {tmp_path}" in result.stdout
    assert "set TMPDIR to a folder with room" in result.stdout and "File too large" in result.stdout


def test_macos_companion_files_named_like_audio_are_left_out(tmp_path):
    write(tmp_path / "in" / "song.wav", _damaged_chord(), 44100)
    apple_double = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(64)
    (tmp_path / "in" / "._song.wav").write_bytes(apple_double)  # macOS on another file system
    (tmp_path / "in" / ".AppleDouble").mkdir()
    (tmp_path / "in" / ".AppleDouble" / "song.wav").write_bytes(apple_double)  # Netatalk, on a NAS
    report = run_batch(tmp_path / "in", tmp_path / "out", PipelineOptions(inpainter="interpolation"))
    assert [(f["path"], f["status"]) for f in report["files"]] == [("song.wav", "repaired")]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [REPORT_NAME, "song.wav"]


def test_a_file_with_no_samples_is_copied_unchanged(tmp_path):
    (tmp_path / "in").mkdir()
    empty = write(tmp_path / "in" / "empty.wav", np.zeros((2, 0), dtype=np.float32), 44100)
    report = run_batch(tmp_path / "in", tmp_path / "out", PipelineOptions(inpainter="interpolation"))
    assert report["files"][0]["status"] == "unchanged" and report["files"][0]["sample_rate"] == 44100
    assert (tmp_path / "out" / "empty.wav").read_bytes() == empty.read_bytes()


def test_an_unreadable_path_says_why_not_system_error(tmp_path):
    with pytest.raises(OSError, match="Is a directory"):
        audio_io.read(tmp_path)


# -- 9. file modes --------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o644, 0o640])
def test_outputs_keep_the_input_mode(tmp_path, mode):
    folder = tmp_path / "in"
    shutil.copytree(EXAMPLES / "recordings", folder)
    for path in folder.rglob("*.*"):
        path.chmod(mode)
    out = tmp_path / "out"
    run_batch(folder, out, PipelineOptions(inpainter="interpolation"))
    for name in ("mutilated-mime-a.wav", "mutilated-mime-c.wav", "more/mutilated-mime-b.flac"):
        assert (out / name).stat().st_mode & 0o777 == mode, name


@pytest.mark.parametrize("fmt,subtype,ext", [("WAV", "PCM_16", "wav"), ("FLAC", "PCM_16", "flac")])
def test_a_file_name_in_another_encoding_than_the_systems_is_repaired(tmp_path, fmt, subtype, ext):
    # A name written by an old Latin-1 system: bytes that are no UTF-8 (Python holds them as surrogates).
    folder = tmp_path / "in"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9 \xff." + ext.encode())
    sf.write(os.fsencode(folder / name), _damaged_chord().T, 44100, subtype=subtype, format=fmt)
    out = tmp_path / "out"
    report = run_batch(folder, out, PipelineOptions(inpainter="interpolation"), workers=1)
    entry = report["files"][0]
    assert entry["status"] == "repaired", entry["message"]
    before, _ = sf.read(os.fsencode(folder / name), dtype="int32")
    after, _ = sf.read(os.fsencode(out / name), dtype="int32")
    outside = np.ones(len(before), dtype=bool)
    outside[GAP[0] : GAP[1]] = False
    assert np.array_equal(before[outside], after[outside]) and np.abs(after[GAP[0] : GAP[1]]).max() > 0


def test_a_shard_removes_its_files_stale_temporaries_of_temporaries(tmp_path):
    """A FLAC's or MP3's tags are joined onto its output in a temporary of the output's temporary:
    a shard killed then left it, and the next run of the shard did not know it for its own."""
    from melrestore.shards import Shard

    folder, out = tmp_path / "in", tmp_path / "out"
    write(folder / "song.flac", _damaged_chord(), 44100)
    out.mkdir()
    nested = out / "..song.flac.abcd1234.melrestore-tmp.efgh5678.melrestore-tmp"
    nested.write_bytes(b"")
    others = out / "..other.flac.abcd1234.melrestore-tmp.efgh5678.melrestore-tmp"  # another shard's, being written
    others.write_bytes(b"")
    run_batch(folder, out, PipelineOptions(inpainter="interpolation"), workers=1, shard=Shard(1, 1))
    assert list(out.rglob("*melrestore-tmp*")) == [others]


def test_a_file_name_near_the_systems_limit_is_written_and_its_stale_temporaries_removed(tmp_path):
    from melrestore.shards import Shard

    folder = tmp_path / "in"
    long_name = "a" * 240 + ".wav"  # 244 bytes: a legal name (255 at most) that leaves no room for ".NAME.xxxxxxxx.melrestore-tmp"
    write(folder / long_name, _damaged_chord(), 44100)
    write(folder / ("b" * 240 + ".wav"), chord(2.0, 44100, 2), 44100)  # no gap: copied
    out = tmp_path / "out"
    report = run_batch(folder, out, PipelineOptions(inpainter="interpolation"), workers=1)
    assert [f["status"] for f in report["files"]] == ["repaired", "unchanged"], [f["message"] for f in report["files"]]
    assert audio_io.read(out / long_name).frames == 88200
    assert not list(out.rglob("*melrestore-tmp*"))
    # A shard removes the stale temporaries of its own files only; a long name's are its own too.
    handle, stale = tempfile.mkstemp(prefix=temporary_prefix(long_name), suffix=TEMP_SUFFIX, dir=out)
    os.close(handle)
    others = out / ".other.wav.abcd1234.melrestore-tmp"  # another shard's file, being written
    others.write_bytes(b"")
    run_batch(folder, out, PipelineOptions(inpainter="interpolation"), workers=1, overwrite=True, shard=Shard(1, 1))
    assert list(out.rglob("*melrestore-tmp*")) == [others]


def test_names_of_the_full_255_bytes_are_repaired_detected_and_leave_no_temporaries(tmp_path):
    """A sidecar named after such a file cannot exist (``NAME.gaps.json`` is over 255 bytes): there
    is none, and the file is repaired; an MP3's tags are joined in a temporary with a name that fits."""
    from mutagen.id3 import ID3, TIT2

    folder, out = tmp_path / "in", tmp_path / "out"
    names = {ext: "n" * (254 - len(ext)) + "." + ext for ext in ("wav", "flac", "mp3")}
    assert {len(name.encode()) for name in names.values()} == {255}
    audio = chord(2.0, 44100, 2)
    audio[:, 40000:48000] = 0.0  # 181 ms: found in the MP3 too
    write(folder / names["wav"], audio, 44100)
    write(folder / names["flac"], audio, 44100)
    mp3 = write(folder / names["mp3"], audio, 44100, fmt="MP3", subtype="MPEG_LAYER_III")
    tags = ID3()
    tags.add(TIT2(encoding=3, text="Mutilated Mime"))
    tags.save(mp3)
    result = run("batch", folder, "-o", out, "--workers", "1", *INTERP)
    assert result.exit_code == 0, result.output
    files = {f["path"]: f for f in json.loads((out / REPORT_NAME).read_text())["files"]}
    assert {name: files[name]["status"] for name in names.values()} == dict.fromkeys(names.values(), "repaired")
    assert ID3(out / names["mp3"])["TIT2"].text == ["Mutilated Mime"]
    assert not list(out.rglob("*melrestore-tmp*"))
    result = run("detect", folder / names["wav"])
    assert result.exit_code == 0 and "1 gap in 1 file" in result.output, result.output
    result = run("repair", folder / names["flac"], "-o", tmp_path / names["flac"], *INTERP)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([names["flac"], "in", "out"])


def test_a_rerun_redoes_a_file_whose_input_changed_since_its_output_was_made(tmp_path):
    # Another folder with the same file names into the same OUT, or an input replaced by a better copy:
    # the earlier output is of other samples, and must not be kept as this input's repair.
    folder, out = tmp_path / "in", tmp_path / "out"
    write(folder / "song.wav", _damaged_chord(2.0), 44100)
    assert run_batch(folder, out, PipelineOptions(inpainter="interpolation"), workers=1)["files"][0]["status"] == "repaired"
    write(folder / "song.wav", chord(3.0, 44100, 2), 44100)  # now 3 s, no gap
    entry = run_batch(folder, out, PipelineOptions(inpainter="interpolation"), workers=1)["files"][0]
    assert entry["status"] == "unchanged" and not entry["from_earlier_run"]
    assert (out / "song.wav").read_bytes() == (folder / "song.wav").read_bytes()
    again = run_batch(folder, out, PipelineOptions(inpainter="interpolation"), workers=1)["files"][0]
    assert again["from_earlier_run"], "an input that did not change is still not redone"


def test_outputs_whose_input_is_gone_are_left_and_named_run_after_run(tmp_path):
    """An input deleted or renamed since an earlier run: its output stays (nothing in OUT is removed
    that the user may want), and the report, which covers the whole output tree, names it, also in
    the run after (it used to drop out of the report at once)."""
    folder, out = tmp_path / "in", tmp_path / "out"
    for name in ("a.wav", "b.wav", "c.wav"):
        write(folder / name, _damaged_chord(1.5), 44100)
    run_batch(folder, out, PipelineOptions(inpainter="interpolation"), workers=1)
    (folder / "a.wav").unlink()
    (folder / "b.wav").rename(folder / "b2.wav")
    for _ in range(2):
        report = run_batch(folder, out, PipelineOptions(inpainter="interpolation"), workers=1)
        assert report["orphaned"] == ["a.wav", "b.wav"]
        assert sorted(f["path"] for f in report["files"]) == ["b2.wav", "c.wav"]
        assert (out / "a.wav").is_file() and (out / "b.wav").is_file()
    result = run("batch", folder, "-o", out, *INTERP)
    assert "2 outputs of earlier runs with no input now (left as they are): a.wav, b.wav" in result.output
    (out / "a.wav").unlink()  # the user removes one: it is no longer named
    assert run_batch(folder, out, PipelineOptions(inpainter="interpolation"), workers=1)["orphaned"] == ["b.wav"]


def test_nan_samples_in_a_float_file_are_read_as_silence_so_dropouts_beside_or_made_of_them_are_filled(tmp_path, interp_engine):
    """A NaN beside a dropout hid it (the edge's level was NaN), and a run of NaN in the music was
    no gap; both are filled now, and a lone NaN sample is left as it is stored, like all outside the gaps."""
    audio = chord(3.0, 44100, 2)
    audio[:, 30000:43230] = 0.0  # a 0.3 s dropout
    audio[:, 29999] = np.nan  # with a NaN just before it
    audio[:, 80000:80441] = np.nan  # 10 ms of NaN
    audio[0, 100000] = np.inf  # one infinite sample in the music
    src = write(tmp_path / "in.wav", audio, 44100, subtype="FLOAT")
    report = repair_file(interp_engine, src, tmp_path / "out.wav")
    assert report.status == "repaired"
    assert [(g["start"], g["end"]) for g in report.gaps] == [(29999, 43230), (80000, 80441)]
    before, after = sf.read(src, always_2d=True)[0].T, sf.read(tmp_path / "out.wav", always_2d=True)[0].T
    assert np.isfinite(after[:, 29999:43230]).all() and np.isfinite(after[:, 80000:80441]).all()
    outside = np.ones(before.shape[1], dtype=bool)
    outside[29999:43230] = outside[80000:80441] = False
    np.testing.assert_array_equal(before[:, outside], after[:, outside])  # the lone inf too


# -- what a rerun keeps: outputs and the records that vouch for them ---------------------------

SMALL_RATE = 16000


def _small(path, freq=220.0, damaged=True):
    """A 1 s clip at 16 kHz, 16-bit, with a 5 ms run of zeros when ``damaged``."""
    audio = chord(1.0, SMALL_RATE, 1, freqs=(freq, 1.5 * freq))
    if damaged:
        audio[:, 6000:6080] = 0.0
    return write(path, audio, SMALL_RATE)


def _batch(inputs, out, shard=None):
    return run_batch(inputs, out, PipelineOptions(inpainter="interpolation"), workers=1, shard=shard)


def _entry(report, name):
    return next(f for f in report["files"] if f["path"] == name)


def test_a_rerun_keeps_no_output_that_another_input_has_replaced_since(tmp_path):
    """A shard's report recorded a.wav from input V1; a whole run then made it from V2, and a.wav's
    input went away: when V1 comes back (same size and time), the old record must not vouch for V2's output."""
    from melrestore.shards import Shard

    folder, out = tmp_path / "in", tmp_path / "out"
    _small(folder / "a.wav", 220.0)
    _small(folder / "b.wav", 300.0)
    _batch(folder, out)
    v1_output = (out / "a.wav").read_bytes()
    for index in (1, 2):
        _batch(folder, out, Shard(index, 2))
    shutil.copy2(folder / "a.wav", tmp_path / "v1.wav")
    _small(folder / "a.wav", 260.0)  # V2: the same size, other samples
    os.utime(folder / "a.wav", ns=(1, 1_000_000_000))
    assert not _entry(_batch(folder, out), "a.wav")["from_earlier_run"]
    assert (out / "a.wav").read_bytes() != v1_output
    (folder / "a.wav").unlink()
    assert _batch(folder, out)["orphaned"] == ["a.wav"]
    shutil.copy2(tmp_path / "v1.wav", folder / "a.wav")
    entry = _entry(_batch(folder, out), "a.wav")
    assert entry["status"] == "repaired" and not entry["from_earlier_run"]
    assert (out / "a.wav").read_bytes() == v1_output


class _Killed(BaseException):
    """Stops a run the way SIGKILL does: no report, its journal left behind."""


def _kill_after_the_first_file(report):
    raise _Killed


def test_a_run_killed_after_its_first_file_keeps_it_on_rerun(tmp_path):
    """A whole run (no shard) appends each finished file to its journal: the rerun after a kill
    keeps that file's output as it is, and does the rest."""
    folder, out = tmp_path / "in", tmp_path / "out"
    _small(folder / "a.wav", 220.0)
    _small(folder / "b.wav", 300.0)
    with pytest.raises(_Killed):
        run_batch(folder, out, PipelineOptions(inpainter="interpolation"), workers=1, on_file=_kill_after_the_first_file)
    assert not (out / REPORT_NAME).exists()
    [done] = [p.name for p in out.glob("*.wav")]
    other = ({"a.wav", "b.wav"} - {done}).pop()
    made, stat = (out / done).read_bytes(), os.stat(out / done)
    report = _batch(folder, out)
    assert (_entry(report, done)["status"], _entry(report, done)["from_earlier_run"]) == ("repaired", True)
    assert (_entry(report, other)["status"], _entry(report, other)["from_earlier_run"]) == ("repaired", False)
    kept = os.stat(out / done)
    assert (out / done).read_bytes() == made and (kept.st_ino, kept.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)  # not rewritten
    assert report["summary"]["existing_kept"] == 1 and not list(out.glob(".melrestore-journal*"))


@pytest.mark.parametrize("change", ["other bytes of the same size", "its time touched"])
def test_an_output_changed_since_its_run_is_redone_even_at_the_same_size(tmp_path, change):
    """The record vouches for the output by size and modification time: another file of the same
    size written over it (or a file whose time moved) is not the file that run wrote."""
    folder, out = tmp_path / "in", tmp_path / "out"
    _small(folder / "a.wav", 220.0)
    _batch(folder, out)
    made = (out / "a.wav").read_bytes()
    if change == "its time touched":
        os.utime(out / "a.wav", ns=(1_000_000_000, 1_000_000_000))
    else:
        other = _small(tmp_path / "other.wav", 260.0).read_bytes()
        assert len(other) == len(made) and other != made
        (out / "a.wav").write_bytes(other)
    entry = _entry(_batch(folder, out), "a.wav")
    assert entry["status"] == "repaired" and not entry["from_earlier_run"]
    assert (out / "a.wav").read_bytes() == made


def test_records_of_outputs_a_run_did_not_handle_are_carried_on(tmp_path):
    """`batch in in2 -o out; batch in -o out; batch in in2 -o out`: the second run orphans every
    output of the first (its names are a.wav, not in/a.wav), and its report must still carry their
    records, or the third redoes all of them."""
    _small(tmp_path / "in" / "a.wav", 220.0)
    _small(tmp_path / "in2" / "x.wav", 300.0)
    inputs, out = [tmp_path / "in", tmp_path / "in2"], tmp_path / "out"
    _batch(inputs, out)
    second = _batch(tmp_path / "in", out)
    assert second["orphaned"] == ["in/a.wav", "in2/x.wav"]
    assert sorted(e["path"] for e in second["carried_entries"]) == ["in/a.wav", "in2/x.wav"]
    third = _batch(inputs, out)
    assert [(f["path"], f["from_earlier_run"]) for f in third["files"]] == [("in/a.wav", True), ("in2/x.wav", True)]
    assert third["orphaned"] == ["a.wav"]


def test_a_shard_names_the_outputs_whose_input_is_gone(tmp_path):
    from melrestore.shards import Shard, merge_reports

    folder, out = tmp_path / "in", tmp_path / "out"
    for name, freq in (("a.wav", 220.0), ("b.wav", 260.0), ("c.wav", 300.0)):
        _small(folder / name, freq)
    _batch(folder, out)
    (folder / "a.wav").unlink()
    for index in (1, 2):  # each shard sees every input before it takes its part
        report = _batch(folder, out, Shard(index, 2))
        assert report["orphaned"] == ["a.wav"] and [e["path"] for e in report["carried_entries"]] == ["a.wav"]
    merged = merge_reports(out)  # laid over the whole run's report, which still lists a.wav
    assert merged["orphaned"] == ["a.wav"] and [e["path"] for e in merged["carried_entries"]] == ["a.wav"]
    assert [f["path"] for f in merged["files"]] == ["b.wav", "c.wav"]


@pytest.mark.parametrize("lookalike", ["broken link", "folder"])
def test_an_old_output_beside_an_entry_that_now_fails_or_is_skipped_is_named_orphaned(tmp_path, lookalike):
    folder, out = tmp_path / "in", tmp_path / "out"
    _small(folder / "a.wav", 220.0)
    _small(folder / "b.wav", 260.0)
    _batch(folder, out)
    (folder / "b.wav").unlink()
    if lookalike == "broken link":
        (folder / "b.wav").symlink_to(folder / "gone.wav")
    else:
        (folder / "b.wav").mkdir()
    report = _batch(folder, out)
    assert _entry(report, "b.wav")["status"] == ("failed" if lookalike == "broken link" else "skipped")
    assert report["orphaned"] == ["b.wav"] and (out / "b.wav").is_file()


def test_an_input_folder_that_cannot_be_read_names_no_output_orphaned_but_keeps_their_records():
    # Not tmp_path: the user nobody (setpriv) could not enter root's pytest folder.
    with tempfile.TemporaryDirectory() as base:
        os.chmod(base, 0o777)
        folder, out = Path(base) / "in", Path(base) / "out"
        _small(folder / "a.wav", 220.0)
        _small(folder / "sub" / "b.wav", 260.0)
        _batch(folder, out)
        for made in [out, *out.rglob("*")]:
            made.chmod(0o777)
        # The input folder itself, or a folder a glob's ** cannot enter (its names are flat: b.wav's is sub/b.wav).
        for locked, inputs in ((folder, [folder]), (folder / "sub", [f"{folder}/**/*.wav"])):
            locked.chmod(0o000)
            try:
                prefix = _without_root(locked)
                if prefix is None:
                    pytest.skip("running as root, and neither unshare --user nor setpriv (as nobody) can take root's rights away here")
                command = [*prefix, sys.executable, "-c", "from melrestore.cli import cli; cli()", "batch", *map(str, inputs),
                           "-o", str(out), *INTERP]
                result = subprocess.run(command, capture_output=True, text=True, timeout=300)
                assert result.returncode == 1, result.stdout + result.stderr
                assert "no input now" not in result.stdout, result.stdout
                report = json.loads((out / REPORT_NAME).read_text())
                assert "orphaned" not in report
                assert {e["path"] for e in report["carried_entries"]} >= {"sub/b.wav"}
            finally:
                locked.chmod(0o755)
        assert [f["from_earlier_run"] for f in _batch(folder, out)["files"]] == [True, True]


def test_a_batch_into_a_folder_leaves_a_running_repairs_temporary_alone(tmp_path):
    """`repair` writes in a hidden scratch folder it holds (ScratchFolder); a batch into the same
    folder removed the temporary it was writing."""
    folder, out = tmp_path / "in", tmp_path / "out"
    _small(folder / "a.wav")
    out.mkdir()
    with ScratchFolder(out) as scratch:
        temporary = scratch / f".repaired.wav.abc123{TEMP_SUFFIX}"
        temporary.write_bytes(b"being written")
        _batch(folder, out)
        assert temporary.read_bytes() == b"being written"
    stale = out / "sub" / f".a.wav.abc123{TEMP_SUFFIX}"  # a killed run's, elsewhere: still removed
    stale.parent.mkdir()
    stale.write_bytes(b"")
    _batch(folder, out)
    assert not stale.exists()
