import json
import shutil

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from conftest import EXAMPLES, chord, write
from melrestore import audio as audio_io
from melrestore.cli import cli

INTERP = ["--inpainter", "interpolation"]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def recordings(tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(EXAMPLES / "recordings", folder)
    return folder


def _outside_gaps_equal(before, after, gaps) -> bool:
    keep = np.ones(before.frames, dtype=bool)
    for g in gaps:
        keep[g["start"] : g["end"]] = False
    return np.array_equal(before.samples[keep], after.samples[keep])


def test_batch_repairs_the_examples_and_reports(recordings, tmp_path):
    out = tmp_path / "out"
    result = run("batch", recordings, "-o", out, *INTERP)
    assert result.exit_code == 0, result.output
    assert "6 gaps: 6 repaired" in result.output
    report = json.loads((out / "melrestore-report.json").read_text())
    assert report["summary"]["gaps_found"] == 6 and report["summary"]["failed"] == 0
    manifest = json.loads((EXAMPLES / "gaps.json").read_text())
    for entry in report["files"]:
        name = entry["path"]
        before, after = audio_io.read(recordings / name), audio_io.read(out / name)
        assert (after.sample_rate, after.channels, after.format, after.subtype) == (
            before.sample_rate, before.channels, before.format, before.subtype,
        )
        assert [[g["start"], g["end"]] for g in entry["gaps"]] == manifest[name]["gaps"]
        assert _outside_gaps_equal(before, after, entry["gaps"])
    # The clip without a gap is copied byte for byte.
    assert (out / "mutilated-mime-c.wav").read_bytes() == (recordings / "mutilated-mime-c.wav").read_bytes()
    assert not list(recordings.rglob("melrestore-report.json"))


def test_completed_outputs_are_kept_and_overwrite_redoes_them(recordings, tmp_path):
    out = tmp_path / "out"
    assert run("batch", recordings, "-o", out, *INTERP).exit_code == 0
    (out / "mutilated-mime-a.wav").write_bytes(b"changed after the run")  # the report vouches for it: kept
    result = run("batch", recordings, "-o", out, *INTERP)
    assert result.exit_code == 0
    assert (out / "mutilated-mime-a.wav").read_bytes() == b"changed after the run"
    report = json.loads((out / "melrestore-report.json").read_text())
    assert report["summary"]["existing_kept"] == 3 and report["summary"]["repaired"] == 2
    result = run("batch", recordings, "-o", out, "--overwrite", *INTERP)
    assert result.exit_code == 0
    assert sf.info(out / "mutilated-mime-a.wav").frames > 0
    assert not list(out.rglob("*melrestore-tmp*"))


def test_bad_files_fail_with_a_reason_and_the_batch_goes_on(tmp_path):
    folder = tmp_path / "in"
    damaged = chord(1.0, 44100, 2)
    damaged[:, 20000:21000] = 0
    write(folder / "good.wav", damaged, 44100)
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk")
    (folder / "empty.flac").write_bytes(b"")
    (folder / "notes.mp3").write_text("not audio at all")
    write(folder / "silent.wav", np.zeros((1, 100)), 44100)
    result = run("batch", folder, "-o", tmp_path / "out", *INTERP)
    assert result.exit_code == 1
    report = json.loads((tmp_path / "out" / "melrestore-report.json").read_text())
    status = {f["path"]: (f["status"], f["message"]) for f in report["files"]}
    assert status["good.wav"][0] == "repaired"
    assert status["silent.wav"][0] == "unchanged"
    for name in ("corrupt.wav", "empty.flac", "notes.mp3"):
        assert status[name][0] == "failed" and status[name][1]
        assert not (tmp_path / "out" / name).exists()
    assert "FAILED corrupt.wav" in result.output


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
    audio = audio_io.Audio(np.zeros((100, 1), dtype=np.int32), 44100, "WAV", "PCM_16", "FILE")

    def broken_write(path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(audio_io.sf, "write", broken_write)
    with pytest.raises(OSError):
        audio_io.write_atomic(audio, tmp_path / "out.wav")
    assert list(tmp_path.iterdir()) == []


def test_workers_give_the_same_result(recordings, tmp_path):
    assert run("batch", recordings, "-o", tmp_path / "one", *INTERP).exit_code == 0
    assert run("batch", recordings, "-o", tmp_path / "two", "--workers", "2", *INTERP).exit_code == 0
    for name in ("mutilated-mime-a.wav", "more/mutilated-mime-b.flac"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_usage_errors_exit_2(recordings, tmp_path):
    assert CliRunner().invoke(cli, ["batch", str(recordings), "-o", str(tmp_path / "o"), "--inpainter", "nope"]).exit_code == 2
    assert CliRunner().invoke(cli, ["batch", str(recordings), "-o", str(recordings)]).exit_code == 2
    assert CliRunner().invoke(cli, ["batch", str(tmp_path / "missing"), "-o", str(tmp_path / "o")]).exit_code == 2


def test_detect_writes_nothing(recordings):
    before = sorted(p.name for p in recordings.rglob("*"))
    result = run("detect", recordings, *INTERP)
    assert result.exit_code == 0
    assert "1.000 s  6.0 ms" in result.output
    assert sorted(p.name for p in recordings.rglob("*")) == before


def test_repair_one_file_and_config(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[pipeline]\ninpainter = "interpolation"\nmax_gap_seconds = 0.5\n')
    src = EXAMPLES / "recordings" / "mutilated-mime-a.wav"
    result = run("repair", src, "-o", tmp_path / "a.wav", "--config", config)
    assert result.exit_code == 0, result.output
    assert "2 of 3 gaps repaired" in result.output and "skipped" in result.output


def test_plugins_lists_the_builtins():
    result = run("plugins", "--json")
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["griffinlim"]["provides"] == {"vocoders": ["griffin-lim"]}
    assert rows["learned"]["distribution"] == "melrestore"
    assert "unet-onnx" in rows["learned"]["provides"]["inpainters"]
    assert all(row["error"] is None for row in rows.values())


def test_the_shipped_pipeline_config_is_valid_and_its_options_reach_the_plugins():
    from melrestore.config import load_config
    from melrestore.pipeline import PipelineOptions, build_engine

    options = PipelineOptions.from_config(load_config(EXAMPLES.parent / "configs" / "pipeline.toml"), inpainter="interpolation")
    engine = build_engine(options)
    assert engine.vocoder.iterations(10) == 100 and engine.vocoder.iterations(400) == 32
    assert engine.detectors[0].min_ms == 2.0
    assert engine.short_gap_ms == 20.0 and engine.long_gap_ms == 150.0
