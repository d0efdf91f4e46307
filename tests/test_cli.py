import glob
import inspect
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import soundfile as sf
from click.testing import CliRunner

from conftest import EXAMPLES, ROOT, SMALL_TRAINING_CONFIG, chord, music_like, run, write
from melrestore import audio as audio_io
from melrestore.cli import cli

INTERP = ["--inpainter", "interpolation"]


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


def test_ctrl_c_while_the_inputs_are_read_exits_130(recordings, tmp_path, monkeypatch):
    """Before the batch's own handler is in place (a large archive takes seconds to list): 130, not
    click's "Aborted!" and 1, which means a file failed."""
    from melrestore import inputs

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(inputs, "collect_inputs", interrupted)
    result = run("batch", recordings, "-o", tmp_path / "out", *INTERP)
    assert result.exit_code == 130 and "interrupted" in result.output and "Aborted" not in result.output
    monkeypatch.undo()
    # While the pipeline is built: no file was begun, so no report speaks of finished ones.
    from melrestore import batch

    monkeypatch.setattr(batch, "build_engine", interrupted)
    result = run("batch", recordings, "-o", tmp_path / "out", *INTERP)
    assert result.exit_code == 130 and "interrupted before any file was repaired: nothing was written" in result.output
    assert not (tmp_path / "out").exists()


def test_completed_outputs_are_kept_and_overwrite_redoes_them(recordings, tmp_path):
    out = tmp_path / "out"
    assert run("batch", recordings, "-o", out, *INTERP).exit_code == 0
    (out / "mutilated-mime-a.wav").write_bytes(b"changed after the run")  # not the file the run wrote: redone
    result = run("batch", recordings, "-o", out, *INTERP)
    assert result.exit_code == 0
    assert sf.info(out / "mutilated-mime-a.wav").frames > 0
    report = json.loads((out / "melrestore-report.json").read_text())
    assert report["summary"]["existing_kept"] == 2 and report["summary"]["repaired"] == 2
    result = run("batch", recordings, "-o", out, *INTERP)
    assert json.loads((out / "melrestore-report.json").read_text())["summary"]["existing_kept"] == 3
    assert "no file needed work: the outputs of an earlier run were kept" in result.output
    result = run("batch", recordings, "-o", out, "--overwrite", *INTERP)
    assert result.exit_code == 0
    assert sf.info(out / "mutilated-mime-a.wav").frames > 0
    assert not list(out.rglob("*melrestore-tmp*"))


def test_a_rerun_with_other_pipeline_settings_redoes_what_they_would_change(recordings, tmp_path):
    """The report names the pipeline that made the outputs: one made with other settings is not kept."""
    out = tmp_path / "out"
    assert run("batch", recordings, "-o", out, *INTERP).exit_code == 0
    (out / "mutilated-mime-a.wav").write_bytes(b"made with the interpolation")
    result = run("batch", recordings, "-o", out, *INTERP, "--short-gap-ms", "0")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "melrestore-report.json").read_text())
    assert report["summary"]["existing_kept"] == 0 and report["pipeline"]["short_gap_ms"] == 0
    assert sf.info(out / "mutilated-mime-a.wav").frames > 0  # redone
    assert len({f["pipeline"] for f in report["files"]}) == 1


def test_a_rerun_keeps_outputs_however_the_defaults_were_given_but_not_another_versions(recordings, tmp_path, monkeypatch):
    """A config that lists every default is the same pipeline; another melrestore may find or fill
    gaps otherwise, so what it made is redone."""
    from melrestore import pipeline

    out = tmp_path / "out"
    assert run("batch", recordings, "-o", out, *INTERP).exit_code == 0
    listed = run("batch", recordings, "-o", out, *INTERP, "--config", EXAMPLES.parent / "configs" / "pipeline.toml")
    assert listed.exit_code == 0 and json.loads((out / "melrestore-report.json").read_text())["summary"]["existing_kept"] == 3
    monkeypatch.setattr(pipeline, "__version__", "0.0.1")
    assert run("batch", recordings, "-o", out, *INTERP).exit_code == 0
    assert json.loads((out / "melrestore-report.json").read_text())["summary"]["existing_kept"] == 0


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


def test_detect_writes_nothing_and_says_how_each_gap_would_be_filled(recordings):
    before = sorted(p.name for p in recordings.rglob("*"))
    result = run("detect", recordings, *INTERP, "--max-gap", "0.5")
    assert result.exit_code == 0
    assert sorted(p.name for p in recordings.rglob("*")) == before
    lines = result.output.splitlines()
    # The length once, the plugin that would fill it, and the gaps the pipeline would leave alone.
    assert "  1.000 s  6.0 ms  digital silence: would be filled by lsar" in lines
    assert "  1.500 s  25.0 ms  digital silence: would be filled by interpolation + griffin-lim" in lines
    assert "  4.500 s  100.0 ms  digital silence: would be filled by similarity, else interpolation + griffin-lim" in lines
    assert any("1000.0 ms" in line and "would be left alone: gap of 1.00 s is longer than the 0.5 s" in line for line in lines)
    assert "mutilated-mime-c.wav: no gaps" in lines
    assert lines[-1] == "6 gaps in 3 files, 1 would be left alone"
    one = run("detect", recordings / "more" / "mutilated-mime-b.flac", *INTERP, "--short-gap-ms", "0")
    assert one.output.splitlines()[0] == "mutilated-mime-b.flac: 3 gaps"
    assert "6.0 ms  digital silence: would be filled by interpolation + griffin-lim" in one.output


def test_detect_on_a_folder_without_audio_says_so(tmp_path):
    result = run("detect", tmp_path)
    assert result.exit_code == 2 and "no audio files in" in result.output and ".opus" in result.output


def test_detect_and_repair_say_what_the_report_warns_of(tmp_path):
    # A FLAC file named .wav: found, and the warning printed under its gaps.
    shutil.copy(EXAMPLES / "recordings" / "more" / "mutilated-mime-b.flac", tmp_path / "b.wav")
    result = run("detect", tmp_path / "b.wav", *INTERP)
    assert result.exit_code == 0 and result.output.splitlines()[0] == "b.wav: 3 gaps"
    assert "  warning: named .wav, but holds FLAC audio (read, and by `batch` written, as such)" in result.output.splitlines()
    repaired = run("repair", tmp_path / "b.wav", "-o", tmp_path / "b.flac", *INTERP)
    assert repaired.exit_code == 0 and "  warning: named .wav, but holds FLAC audio" in repaired.output


def test_detect_help_lists_only_the_flags_that_matter_there():
    text = run("detect", "-h").output
    assert "--vocoder" not in text and "--frontend" not in text
    assert "--max-gap" in text and "--short-gap-ms" in text and "Examples:" in text


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

    config = load_config(EXAMPLES.parent / "configs" / "pipeline.toml")
    options = PipelineOptions.from_config(config, inpainter="interpolation")
    engine = build_engine(options)
    assert engine.vocoder.iterations(10) == 200 and engine.vocoder.iterations(400) == 32
    assert engine.detectors[0].min_ms == 2.0
    assert engine.short_gap_ms == 20.0 and engine.long_gap_ms == 30.0
    # It lists the defaults: each plugin option it sets is that plugin's own default.
    from melrestore.plugins.learned import onnx_inpainter

    factories = {"griffin-lim": type(engine.vocoder).__init__, "digital-silence": type(engine.detectors[0]).__init__,
                 "unet-onnx": onnx_inpainter("unet-44k.onnx"), "lsar": type(engine.short_gap_repairer).__init__,
                 "similarity": type(engine.long_gap_repairer).__init__}
    for name, values in config["pipeline"]["options"].items():
        defaults = {key: p for key, p in inspect.signature(factories[name]).parameters.items() if key != "self"}
        # every option of the plugin but those whose default is None or a test's (block_samples)
        assert set(values) == {key for key, p in defaults.items() if p.default is not None}, name
        assert {key: defaults[key].default for key in values} == values, name


def test_the_help_states_the_defaults_the_pipeline_really_has():
    import re

    from melrestore.pipeline import PipelineOptions
    from melrestore.plugins.detectors import DigitalSilence

    text = " ".join(run("batch", "--help").output.split())
    stated = {flag: float(value) for flag, value in re.findall(r"(--[a-z-]+) [A-Z]+ [^[]*\[default: ([0-9.]+)\]", text)}
    options = PipelineOptions()
    assert stated == {"--max-gap": options.max_gap_seconds, "--min-gap-ms": DigitalSilence().min_ms,
                      "--short-gap-ms": options.short_gap_ms, "--long-gap-ms": options.long_gap_ms}


def test_help_answers_without_importing_torch_and_every_command_has_examples():
    # Importing torch takes seconds; `--help` must not.
    code = "import sys; from melrestore.cli import cli; assert 'torch' not in sys.modules and 'numpy' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
    for command in ("batch", "report", "detect", "repair", "evaluate", "train", "export-onnx", "plugins", "check-plugin"):
        result = run(command, "-h")
        assert result.exit_code == 0 and "Example" in result.output, command
    assert "Examples:" in run("-h").output
    assert "TARGET" not in run("repair", "--help").output


def test_plugins_lists_every_builtin_without_loading_torch_or_onnxruntime():
    # The plugin modules import their heavy libraries only when a plugin is built or run.
    code = """
import sys
from melrestore.cli import cli
try:
    cli(["plugins"])
except SystemExit as stop:
    assert stop.code in (0, None), stop.code
heavy = sorted({"torch", "torchaudio", "onnxruntime", "onnx", "scipy"} & set(sys.modules))
assert not heavy, f"listing the plugins imported {heavy}"
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "FAILED" not in result.stdout
    for name in ("unet-onnx", "griffin-lim", "similarity", "lsar", "music-44k", "digital-silence"):
        assert name in result.stdout


def test_batch_takes_files_folders_and_globs_and_mirrors_each_input(recordings, tmp_path):
    out = tmp_path / "out"
    result = run("batch", recordings / "mutilated-mime-a.wav", recordings / "more", str(recordings / "*-c.wav"), "-o", out, *INTERP)
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.*") if p.name != "melrestore-report.json") == [
        "more/mutilated-mime-b.flac", "mutilated-mime-a.wav", "mutilated-mime-c.wav"]
    before, after = audio_io.read(recordings / "more" / "mutilated-mime-b.flac"), audio_io.read(out / "more" / "mutilated-mime-b.flac")
    report = json.loads((out / "melrestore-report.json").read_text())
    gaps = next(f["gaps"] for f in report["files"] if f["path"] == "more/mutilated-mime-b.flac")
    assert len(gaps) == 3 and _outside_gaps_equal(before, after, gaps)
    assert len(report["input"]) == 3


def test_a_double_star_glob_enters_no_linked_folder(tmp_path):
    """As a folder input's walk: glob's "**" follows links, and two links up (a/up, b/up -> ..) made
    it run for ever; a linked folder elsewhere (b/ext) is left out too."""
    damaged = chord(2.0, 44100, 2)
    damaged[:, 40000:42000] = 0.0
    write(tmp_path / "live" / "a" / "x.wav", damaged, 44100)
    write(tmp_path / "other" / "y.wav", damaged, 44100)
    (tmp_path / "live" / "b").mkdir()
    for link, to in (("a/up", ".."), ("b/up", ".."), ("b/ext", "../../other")):
        (tmp_path / "live" / link).symlink_to(to)
    command = [sys.executable, "-c", "from melrestore.cli import cli; cli()", "batch", "live/**/*.wav", "-o", "out", *INTERP]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "out" / "melrestore-report.json").read_text())
    assert [(f["path"], f["status"]) for f in report["files"]] == [("x.wav", "repaired")]
    from melrestore.inputs import _expand

    assert _expand(str(tmp_path / "live" / "**")) == [tmp_path / "live", *(tmp_path / "live" / n for n in ("a", "a/x.wav", "b"))]


@pytest.mark.parametrize("pattern", [
    "live/**/*.wav", "live/**", "live/**/", "**/*.wav", "**", "**/", "live/*/**/*.wav", "live/**/**/*.wav", "live/**/deep/**",
    "*/**/*.wav", "l*/**/*.?av", "live/.hidden/**/*.wav", "live/**/.hidden/*.wav", "live/.*/**", "nonexist/**",
    "live/b[[]1]/**/*.wav", "live/**/*/", "live/*/**", "live/x[*]y/**/*.wav", "live/**.wav", "live/**/top.wav/**",
    "l*/top.wav/**", "**/deep/**/", "**/**", "{tmp}/live/**/*.flac",
])
def test_a_double_star_glob_matches_what_glob_matches_in_a_tree_without_links(tmp_path, monkeypatch, pattern):
    from melrestore.inputs import _expand

    for name in ("live/top.wav", "live/a/x.wav", "live/a/deep/d.wav", "live/a/deep/er/e.flac", "live/b[1]/b.wav", "live/b[1]/c/c.wav",
                 "live/.hidden/s.wav", "live/.hidden/h/t.wav", "live/a/.dot.wav", "other/o.wav", "live/x*y/z.wav", "live/f.wav2"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    pattern = pattern.format(tmp=tmp_path)
    assert _expand(pattern) == [Path(m) for m in sorted(glob.glob(pattern, recursive=True)) if m]


def test_an_output_folder_inside_an_input_is_refused_and_a_rerun_keeps_what_is_done(recordings, tmp_path):
    # Merged with issue-12: OUT inside an input folder is a usage error (it never writes into its inputs).
    inside = recordings / "fixed"
    result = run("batch", recordings / "mutilated-mime-a.wav", recordings, "-o", inside, *INTERP)
    assert result.exit_code == 2 and "inside" in result.output and not inside.exists()
    out = tmp_path / "out"
    assert run("batch", recordings, "-o", out, *INTERP).exit_code == 0
    result = run("batch", recordings, "-o", out, *INTERP)
    assert result.exit_code == 0 and "3 files:" in result.output and "3 done by an earlier run" in result.output


@pytest.mark.parametrize("args, message", [
    (["{in}/*.opus"], "matches nothing"),
    (["{in}/mutilated-mime-a.wav", "{copy}/mutilated-mime-a.wav"], "would both be written to mutilated-mime-a.wav"),
    (["{in}/missing.wav"], "does not exist"),
    (["{gaps}"], "is not an audio file"),
    (["{in}", "--max-gap", "-1"], "--max-gap"),
    (["{in}", "--min-gap-ms", "-3"], "--min-gap-ms"),
    (["{in}", "--min-gap-ms", "0"], "--min-gap-ms"),
    (["{in}", "--short-gap-ms", "-1"], "--short-gap-ms"),
    (["{in}", "--workers", "-2"], "--workers"),
])
def test_inputs_and_flags_that_cannot_mean_anything_are_usage_errors(recordings, tmp_path, args, message):
    copy = tmp_path / "copy"
    shutil.copytree(recordings, copy)
    fill = {"in": recordings, "copy": copy, "gaps": EXAMPLES / "gaps.json"}
    result = run("batch", *[a.format(**fill) for a in args], "-o", tmp_path / "out", *INTERP)
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def _config(tmp_path, text):
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, message", [
    ('[pipeline]\ndetectors = "digital-silence"\n', 'detectors takes a list of names like ["digital-silence"]'),
    ('[pipeline]\nmax_gap_seconds = "3"\n', "max_gap_seconds takes a number"),
    ('[pipeline]\ndetectors = []\n', "detectors is empty: no gap would ever be found"),
    ('[pipeline]\nmax_gap_seconds = -1\n', "max_gap_seconds must be above 0"),
    ('[pipeline]\ninpainter = 3\n', "inpainter takes a str"),
    ('[pipeline.options.griffin-lim]\nn_iter = "many"\n', "option 'n_iter' of vocoder 'griffin-lim' takes an int (or nothing), not 'many'"),
    ('[pipeline.options.griffin-lim]\niterations = 8\n', "vocoder 'griffin-lim' has no option 'iterations'"),
    ('[pipeline.options.digital-silence]\nmin_ms = true\n', "option 'min_ms' of gap detector 'digital-silence' takes a number"),
    ('[pipeline.options.digital-silence]\nmin_ms = "5"\n', "option 'min_ms' of gap detector 'digital-silence' takes a number (like 2.0), not '5'"),
    ('[pipeline.options.digital-silence]\nmin_ms = 0\n', "'digital-silence' failed to start: min_ms and edge_ms must be above 0"),
    ('[pipeline.options.grifin-lim]\nn_iter = 8\n', "no plugin object is named 'grifin-lim'"),
    # options for a plugin this run does not use (the run fills with the interpolation): checked too
    ('[pipeline.options.unet-torch]\nbogus_key = 1\n', "inpainter 'unet-torch' has no option 'bogus_key'"),
])
def test_config_types_are_checked_before_any_file_is_touched(recordings, tmp_path, text, message):
    # With workers: the config is checked before any starts (a usage error, not a worker that failed).
    result = run("batch", recordings, "-o", tmp_path / "out", "--workers", "2", "--config", _config(tmp_path, text), *INTERP)
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_a_config_value_of_the_right_type_reaches_the_plugin(recordings, tmp_path):
    # An integer where the default is a float is fine.
    config = _config(tmp_path, "[pipeline.options.digital-silence]\nmin_ms = 30\n")
    result = run("detect", recordings / "mutilated-mime-a.wav", "--config", config, *INTERP)
    assert result.exit_code == 0 and result.output.splitlines()[0] == "mutilated-mime-a.wav: 2 gaps"  # the 25 ms gap is not one


def test_repair_writes_the_format_its_extension_names(tmp_path):
    src = EXAMPLES / "recordings" / "mutilated-mime-a.wav"
    result = run("repair", src, "-o", tmp_path / "a.flac", *INTERP)
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "FLAC/PCM_16" in result.output and "outside the gaps are the same" in result.output
    info = sf.info(tmp_path / "a.flac")
    assert (info.format, info.subtype) == ("FLAC", sf.info(src).subtype)
    # The same samples as a WAV repair: the conversion to FLAC is lossless here.
    assert run("repair", src, "-o", tmp_path / "a.wav", *INTERP).exit_code == 0
    assert np.array_equal(audio_io.read(tmp_path / "a.flac").samples, audio_io.read(tmp_path / "a.wav").samples)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.flac", "a.wav"]  # no temporary file left
    result = run("repair", src, "-o", tmp_path / "a.ogg", *INTERP)
    assert result.exit_code == 0 and "OGG/VORBIS" in result.output and "were re-encoded lossily too" in result.output
    floats = write(tmp_path / "float.wav", audio_io.read(src).as_float(), 44100, subtype="FLOAT")
    result = run("repair", floats, "-o", tmp_path / "float.flac", *INTERP)  # FLAC holds no float: rounded
    assert result.exit_code == 0 and "outside the gaps were converted to PCM_16 too" in result.output, result.output


def test_repair_to_another_format_encodes_once_from_the_decoded_samples_and_keeps_the_title(tmp_path):
    """An MP3 to FLAC: outside the gap, exactly the MP3's decoded samples (it had been re-encoded as
    MP3 first, a second lossy generation), and the title libsndfile reads carried over."""
    damaged = chord(3.0, 44100, 2)
    with sf.SoundFile(tmp_path / "in.mp3", "w", 44100, 2, "MPEG_LAYER_III", format="MP3", bitrate_mode="CONSTANT") as f:
        f.title = "Mutilated Mime"
        f.write(damaged.T)
    (tmp_path / "in.gaps.json").write_text('{"gaps": [{"start": 1.0, "end": 1.05}]}')
    result = run("repair", tmp_path / "in.mp3", "-o", tmp_path / "out.flac", *INTERP)
    assert result.exit_code == 0 and "only the text ones libsndfile knows" in result.output, result.output
    decoded, repaired = audio_io.read(tmp_path / "in.mp3").as_float(), audio_io.read(tmp_path / "out.flac").as_float()
    outside = np.ones(decoded.shape[1], bool)
    outside[44100:46305] = False
    step = 2.0**-15  # FLAC/PCM_16
    assert np.abs(repaired[:, outside] - np.round(decoded[:, outside] / step) * step).max() == 0
    assert sf.SoundFile(tmp_path / "out.flac").title == "Mutilated Mime"


@pytest.mark.parametrize("target, message", [("a.txt", "cannot tell the format of"), ("a", "cannot tell the format of"), ("-", "standard output")])
def test_repair_refuses_outputs_it_cannot_write_as_named(tmp_path, monkeypatch, target, message):
    monkeypatch.chdir(tmp_path)
    result = run("repair", EXAMPLES / "recordings" / "mutilated-mime-a.wav", "-o", target, *INTERP)
    assert result.exit_code == 2 and message in result.output
    assert list(tmp_path.iterdir()) == []


def test_repair_says_in_one_line_before_any_work_what_it_cannot_write(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    damaged = chord(2.0, 96000, 2)
    damaged[:, 96000:100000] = 0
    write(tmp_path / "hi.wav", damaged, 96000)
    (tmp_path / "afile").write_text("")
    for target, message in (("x.mp3", "MP3/MPEG_LAYER_III at 96000 Hz, 2 channels: MPEG-1/2/2.5 only supports sample rates"),
                            ("afile/x.wav", "afile is not a folder"), ("nowhere/x.wav", "nowhere does not exist")):
        result = run("repair", "hi.wav", "-o", target, *INTERP)
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "hi.wav"]


@pytest.mark.parametrize("fmt", ["WAVEX", "RF64"])
def test_repair_to_wav_keeps_an_extensible_or_rf64_wav_as_it_is(tmp_path, fmt):
    """`.wav` names three containers: one of them stays what it is, tags and all, not converted."""
    damaged = chord(2.0, 48000, 2)
    damaged[:, 48000:50000] = 0
    with sf.SoundFile(tmp_path / "in.wav", "w", 48000, 2, "PCM_24", format=fmt) as f:
        f.title = "My Title"
        f.write(damaged.T)
    result = run("repair", tmp_path / "in.wav", "-o", tmp_path / "out.wav", *INTERP)
    assert result.exit_code == 0 and "converted" not in result.output, result.output
    with sf.SoundFile(tmp_path / "out.wav") as out:
        assert (out.format, out.subtype) == (fmt, "PCM_24") and (fmt == "RF64" or out.title == "My Title")
    before, after = (tmp_path / "in.wav").read_bytes(), (tmp_path / "out.wav").read_bytes()
    assert len(before) == len(after) and before[:100] == after[:100] and before[-200:] == after[-200:]


def test_lossy_outputs_are_named_in_the_summary(tmp_path):
    damaged = chord(2.0, 44100, 2)
    damaged[:, 44100:46000] = 0
    write(tmp_path / "in" / "song.ogg", damaged, 44100, subtype="VORBIS", fmt="OGG")
    (tmp_path / "in" / "song.gaps.json").write_text('{"gaps": [{"start": 1.0, "end": 1.04}]}')
    result = run("batch", tmp_path / "in", "-o", tmp_path / "out", *INTERP, "--detector", "labels")
    assert result.exit_code == 0, result.output
    assert "note: 1 file re-encoded (OGG, MP3 and ADPCM are lossy): samples outside the gaps changed too: song.ogg" in result.output


def test_quiet_prints_nothing_and_verbose_every_gap(recordings, tmp_path):
    quiet = run("batch", recordings, "-o", tmp_path / "q", "-q", *INTERP)
    assert quiet.exit_code == 0 and quiet.output == "" and (tmp_path / "q" / "mutilated-mime-a.wav").exists()
    verbose = run("batch", recordings, "-o", tmp_path / "v", "--verbose", *INTERP)
    assert "mutilated-mime-a.wav: repaired, 3 gaps" in verbose.output
    assert "  1.500 s  25.0 ms  digital silence: filled by interpolation + griffin-lim" in verbose.output


def test_train_refuses_a_pipeline_config_and_too_little_data(tmp_path):
    data = tmp_path / "data"
    write(data / "clip-1.wav", chord(2.0, 44100), 44100)
    config = EXAMPLES.parent / "configs"
    result = run("train", "--config", config / "pipeline.toml", "--data", data, "-o", tmp_path / "run")
    assert result.exit_code == 2 and "is not a training config: it has no [training] table" in result.output
    result = run("train", "--config", config / "unet-44k.toml", "--data", data, "-o", tmp_path / "run")
    assert result.exit_code == 2
    assert "too little data: 1 audio file found below" in result.output and "1 for training, 0 for validation" in result.output
    write(data / "clip-5.wav", chord(2.0, 44100), 44100)  # lands in the validation split
    result = run("train", "--config", config / "unet-44k.toml", "--data", data, "-o", tmp_path / "run")
    assert result.exit_code == 2 and "cannot train: no track is longer than" in result.output
    assert "(2 audio files found below" in result.output and not (tmp_path / "run").exists()
    (data / "clip-5.wav").write_bytes(b"RIFF and nothing else")  # the one validation file, unreadable
    result = run("train", "--config", config / "unet-44k.toml", "--data", data, "-o", tmp_path / "run")
    assert result.exit_code == 2 and "cannot train: none of the 1 validation files could be read" in result.output
    assert "skipped" in result.output and "clip-5.wav" in result.output


@pytest.mark.parametrize("change, message", [
    (("n_mels = 32", "n_mel = 32"), "unknown [mel] keys: n_mel (it takes f_max, f_min, hop_length, log_floor, mel_scale, n_fft, n_mels,"),
    (("base_channels = 4", "base_channel = 4"), "unknown [model] keys: base_channel (it takes base_channels, depth, in_channels, n_mels)"),
    (("depth = 2", "depth = 2.5"), "[model] depth takes an int, not 2.5"),
    (("steps = 6", 'steps = "6"'), "[training] steps takes an int, not '6'"),
    (("steps = 6", "steps = 6\nmodel = 5"), "unknown [training] keys: model (it takes "),  # the network is [model]'s
    (("steps = 6", "steps = 6\nwindows = 64"), "[training] windows takes a list, not 64"),
    *((("steps = 6", f"steps = 6\nwindows = {value}"), f"[training] windows takes window lengths in frames, whole numbers above 0"
       f" in ascending order (like [128, 256, 512]), not {shown}")
      for value, shown in (('[64, "x"]', "[64, 'x']"), ("[64.5]", "[64.5]"), ("[0]", "[0]"), ("[]", "[]"),
                           ("[true]", "[True]"), ("[128, 64]", "[128, 64]"))),
    (("steps = 6", "steps = 6\nwindows = [64, 128]"), None),
    (("learning_rate = 0.003", "learning_rate = 1"), None),  # an int where a float is expected: fine
])
def test_train_refuses_a_config_it_would_misread_in_one_line(tmp_path, change, message):
    data = tmp_path / "data"
    write(data / "clip-1.wav", chord(2.0, 8000), 8000)
    result = run("train", "--config", _config(tmp_path, SMALL_TRAINING_CONFIG.replace(*change)), "--data", data, "-o", tmp_path / "run")
    if message is None:  # the config is read, and the one file is too little data
        message = "too little data: 1 audio file found"
    assert result.exit_code == 2 and message in result.output.splitlines()[-1] and "Traceback" not in result.output, result.output
    assert not (tmp_path / "run").exists()


def test_train_splits_the_folder_by_the_configs_validation_percent(tmp_path):
    from melrestore.plugins.datasets import split_of

    names = [f"clip-{i}.wav" for i in range(200)]
    train_only = [n for n in names if split_of(n, 15) == "train"]
    chosen = [n for n in train_only if split_of(n, 90) == "validation"][:1] + [n for n in train_only if split_of(n, 90) == "train"][:1]
    for name in chosen:
        write(tmp_path / "data" / name, chord(2.0, 8000), 8000)
    default = run("train", "--config", _config(tmp_path, SMALL_TRAINING_CONFIG), "--data", tmp_path / "data", "-o", tmp_path / "a")
    assert default.exit_code == 2 and "2 for training, 0 for validation" in default.output
    ninety = SMALL_TRAINING_CONFIG.replace("steps = 6", "steps = 6\nvalidation_percent = 90")
    result = run("train", "--config", _config(tmp_path, ninety), "--data", tmp_path / "data", "-o", tmp_path / "b")
    assert "0 for validation" not in result.output and "1 for training, 1 for validation" in result.output
    # A prepared cache's split was fixed when it was made: the share is refused, not ignored.
    prepared = run("train", "--config", _config(tmp_path, ninety), "--dataset", "prepared", "--data", tmp_path / "data", "-o", tmp_path / "c")
    assert prepared.exit_code == 2 and "no option 'validation_percent'" in prepared.output, prepared.output
    assert "[training] table" in prepared.output and not (tmp_path / "c").exists()
    (tmp_path / "data" / "manifest.json").write_text('{"tracks": [{"decoded": "a.npy"}]}')  # not one the script writes
    broken = run("train", "--config", _config(tmp_path, SMALL_TRAINING_CONFIG), "--dataset", "prepared", "--data", tmp_path / "data",
                 "-o", tmp_path / "d")
    assert broken.exit_code == 2 and "is not a manifest of examples/prepare_training_data.py" in broken.output, broken.output
    assert "no 'split'" in broken.output and "Traceback" not in broken.output


def test_train_names_each_file_too_short_for_a_window_and_trains_on_the_others(tmp_path):
    from melrestore.plugins.datasets import split_of

    names = [f"track{i}.wav" for i in range(40)]
    validation = [n for n in names if split_of(n, 15) == "validation"][:1]
    train = [n for n in names if split_of(n, 15) == "train"][:2]
    data = tmp_path / "data"
    for seed, name in enumerate(validation + train):
        write(data / name, music_like(6, 8000, seed), 8000)
    short = write(data / "track-short.wav", music_like(3, 8000, 9), 8000)  # the longest window, 512 frames, is 4.1 s
    assert split_of(short.name, 15) == "train"
    config = _config(tmp_path, SMALL_TRAINING_CONFIG.replace("steps = 6", "steps = 2"))
    result = run("train", "--config", config, "--data", data, "-o", tmp_path / "run")
    assert result.exit_code == 0, result.output
    skipped = [line for line in result.output.splitlines() if line.startswith("skipped")]
    assert skipped == [f"skipped {short}: shorter than a 4.1 s window (512 frames)"], result.output
    assert (tmp_path / "run" / "best.pt").is_file()
    # Every validation file too short: each is named, and training stops as before.
    write(data / validation[0], music_like(3, 8000, 0), 8000)
    result = run("train", "--config", config, "--data", data, "-o", tmp_path / "again")
    assert result.exit_code == 2 and "cannot train: no track is longer than 512 frames" in result.output
    assert f"skipped {data / validation[0]}: shorter than a 4.1 s window (512 frames)" in result.output


def test_export_onnx_refuses_a_file_that_is_not_a_checkpoint(tmp_path):
    for name, content in (("notes.pt", b"not a checkpoint"), ("song.wav", (EXAMPLES / "recordings" / "mutilated-mime-c.wav").read_bytes())):
        (tmp_path / name).write_bytes(content)
        result = run("export-onnx", tmp_path / name, "-o", tmp_path / "x.onnx")
        assert result.exit_code == 2 and "is not a melrestore checkpoint" in result.output
        assert "weights_only" not in result.output and not (tmp_path / "x.onnx").exists()


def _small_checkpoint(path, **changes):
    """A checkpoint of a tiny U-Net, as `melrestore train` writes it, with ``changes`` to its dictionary."""
    import torch

    from melrestore.mel import MelSettings
    from melrestore.networks import build
    from melrestore.states import ModelMeta, checkpoint_dict

    config = {"n_mels": 32, "base_channels": 4, "depth": 2, "in_channels": 3}
    meta = ModelMeta("unet", config, (64,), 0.35, MelSettings(sample_rate=8000, n_fft=256, hop_length=64, n_mels=32))
    data = {**checkpoint_dict(meta, build("unet", config)), **changes}
    torch.save({k: v for k, v in data.items() if v is not None}, path)  # None: leave the key out
    return path


def test_export_onnx_refuses_in_one_line_what_it_cannot_export_and_writes_nothing(tmp_path):
    good = _small_checkpoint(tmp_path / "good.pt")
    weights = good.read_bytes()
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    wider = {"n_mels": 32, "base_channels": 8, "depth": 2, "in_channels": 3}
    for checkpoint, out, message in (
        (good, tmp_path / "." / "good.pt", "is the checkpoint itself"),
        (_small_checkpoint(tmp_path / "no-architecture.pt", architecture=None), tmp_path / "x.onnx", "without its 'architecture'"),
        (_small_checkpoint(tmp_path / "wider.pt", model_config=wider), tmp_path / "x.onnx",
         "its weights do not fit the network its model_config describes (size mismatch for"),
        (good, tmp_path / "notes.txt" / "x.onnx", "notes.txt is not a folder"),
    ):
        result = run("export-onnx", checkpoint, "-o", out)
        assert result.exit_code == 2 and message in result.output.splitlines()[-1] and "Traceback" not in result.output, result.output
    assert good.read_bytes() == weights and not (tmp_path / "x.onnx").exists()


def test_export_onnx_checks_a_short_example_on_the_longest_window_it_fills_and_refuses_one_shorter_than_all(tmp_path):
    clip = EXAMPLES / "clean" / "mutilated-mime-c.flac"  # 4.0 s of music; 512 frames at this model's 8 kHz are 4.1 s
    out = tmp_path / "models" / "model.onnx"
    result = run("export-onnx", _small_checkpoint(tmp_path / "two.pt", window_frames=[64, 512]), "-o", out, "--example", clip)
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    assert "checked on its first 64 frames, the longest window it fills" in result.output and "real: max abs difference" in result.output
    # No window it fills: refused in one line before anything is written, the earlier file kept as it was.
    out.write_bytes(b"an earlier model")
    result = run("export-onnx", _small_checkpoint(tmp_path / "long.pt", window_frames=[512]), "-o", out, "--example", clip)
    assert result.exit_code == 2, result.output
    assert result.output.splitlines()[-1] == (f"Error: --example {clip}: 4.00 s long, shorter than the model's shortest window "
                                              "(512 frames, 4.09 s)")
    assert out.read_bytes() == b"an earlier model" and [p.name for p in out.parent.iterdir()] == ["model.onnx"]


def test_export_onnx_replaces_the_output_only_once_the_parity_check_passes(tmp_path, monkeypatch):
    """The README's own command exports over the shipped model: a failed check must leave the earlier file whole."""
    from melrestore import export

    out = tmp_path / "unet-44k.onnx"
    out.write_bytes(b"an earlier model")
    arguments = ("export-onnx", ROOT / "checkpoints" / "unet-44k.pt", "-o", out, "--example", EXAMPLES / "clean" / "mutilated-mime-c.flac")
    with monkeypatch.context() as patch:
        patch.setattr(export, "TOLERANCE", 0.0)  # two runtimes never agree to the last bit on this network
        result = run(*arguments)
    assert result.exit_code == 1, result.output
    assert re.fullmatch(rf"Error: ONNX Runtime disagrees with PyTorch by \S+, more than 0: {re.escape(str(out))} not written",
                        result.output.splitlines()[-1]), result.output
    assert "real: max abs difference" in result.output and "wrote" not in result.output
    assert out.read_bytes() == b"an earlier model" and [p.name for p in tmp_path.iterdir()] == [out.name]
    # At the real tolerance the file is replaced, checked on the 4 s clip's longest window (256 of 512 frames).
    result = run(*arguments)
    assert result.exit_code == 0 and "checked on its first 256 frames" in result.output and f"wrote {out}" in result.output, result.output
    assert onnx.load(out).graph.input[0].name == "input" and [p.name for p in tmp_path.iterdir()] == [out.name]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, where no file can be made")
def test_export_onnx_to_a_place_it_cannot_write_is_one_line():
    result = run("export-onnx", ROOT / "checkpoints" / "fc-44k.pt", "-o", "/proc/x.onnx")
    assert result.exit_code == 1 and result.output == "Error: cannot write /proc/x.onnx: No such file or directory\n", result.output


def test_check_plugin_checks_every_kind(tmp_path):
    assert "contract of its kind" in run("check-plugin", "-h").output
    for name, kind in (("lsar", "sample repairer"), ("digital-silence", "gap detector"), ("interpolation", "inpainter"),
                       ("music-44k", "mel frontend")):
        result = run("check-plugin", name)
        assert result.exit_code == 0 and f"{name} keeps the {kind} contract" in result.output and "FAIL" not in result.output
    result = run("check-plugin", "folder")
    assert result.exit_code == 2 and "give --data DIR" in result.output
    result = run("check-plugin", "folder", "--data", EXAMPLES / "clean")
    assert result.exit_code == 0 and "folder keeps the dataset contract" in result.output
    assert run("check-plugin", "nope").exit_code == 2


@pytest.mark.parametrize("name, content, target", [
    ("notes.wav", b"not audio", "out.flac"),
    ("corrupt.wav", b"RIFF\x00\x00\x00\x00WAVEjunkjunk", "out.wav"),  # a WAV header, and no samples
])
def test_repair_of_a_file_that_is_not_audio_is_one_line_exit_1_and_no_output(tmp_path, name, content, target):
    (tmp_path / name).write_bytes(content)
    result = run("repair", tmp_path / name, "-o", tmp_path / target, *INTERP)
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"Error: cannot read {tmp_path / name}: ") and len(result.output.splitlines()) == 1, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("ext", ["wav", "flac"])
def test_repair_overwrite_of_a_file_that_fails_keeps_the_existing_output(tmp_path, ext):
    src = tmp_path / "song.wav"
    shutil.copy(EXAMPLES / "recordings" / "mutilated-mime-a.wav", src)
    src.with_suffix(".txt").write_text("1.2\t1.1\tclick\n")  # a malformed label file: the file fails
    target = tmp_path / f"song-fixed.{ext}"
    target.write_bytes(b"the repair of an earlier day")
    result = run("repair", src, "-o", target, "--overwrite", *INTERP)
    assert result.exit_code == 1 and "failed" in result.output
    assert target.read_bytes() == b"the repair of an earlier day"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["song.wav", "song.txt", target.name])


@pytest.mark.parametrize("existing", [False, True])
def test_repair_that_cannot_write_names_out_file_not_its_scratch(tmp_path, monkeypatch, existing):
    """A full disk while OUT_FILE is written (in a scratch folder beside it): the error names OUT_FILE."""
    import errno

    write(tmp_path / "song.wav", chord(2.0, 44100, 2), 44100)  # no gap: copied
    target = tmp_path / "song-fixed.wav"
    if existing:
        target.write_bytes(b"the repair of an earlier day")

    def full_disk(source, destination, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(destination))

    monkeypatch.setattr(shutil, "copy2", full_disk)
    monkeypatch.chdir(tmp_path)
    result = run("repair", "song.wav", "-o", "song-fixed.wav", "--overwrite", *INTERP)
    assert result.exit_code == 1 and "cannot write song-fixed.wav: No space left on device" in result.output, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["song.wav"] + ["song-fixed.wav"] * existing)
    assert not existing or target.read_bytes() == b"the repair of an earlier day"


def _in_a_terminal(*args) -> tuple[int, str]:
    """The command line run with its stderr on a terminal (100 columns), as a user sees it: exit
    status and what went to stderr.  tqdm redraws at every move (TQDM_MININTERVAL, TQDM_MINITERS)."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    ours, theirs = pty.openpty()
    fcntl.ioctl(theirs, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    env = {**os.environ, "TQDM_MININTERVAL": "0", "TQDM_MINITERS": "0"}
    proc = subprocess.Popen([sys.executable, "-c", "from melrestore.cli import cli; cli()", *map(str, args)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=theirs, env=env)
    os.close(theirs)
    shown = b""
    while True:
        try:
            data = os.read(ours, 4096)
        except OSError:  # the command has ended (EIO)
            break
        if not data:
            break
        shown += data
    os.close(ours)
    return proc.wait(), shown.decode()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a pseudo-terminal as Linux has it")
def test_the_bars_move_within_a_file_as_its_gaps_are_done(recordings, tmp_path):
    code, shown = _in_a_terminal("batch", recordings, "-o", tmp_path / "out", "--workers", "1", *INTERP)
    assert code == 0, shown
    assert re.search(r"\| [012]\.(47|73)/3 \[", shown), shown  # a file scanned (its first fifth), then a third of its 3 gaps
    assert shown.rstrip().split("\r")[-1].startswith("100%") and "| 3/3 [" in shown.rstrip().split("\r")[-1], shown
    (tmp_path / "out" / "mutilated-mime-a.wav").unlink()  # the rerun redoes that file alone: the bar counts it alone
    code, shown = _in_a_terminal("batch", recordings, "-o", tmp_path / "out", "--workers", "1", *INTERP)
    assert code == 0, shown
    assert shown.rstrip().split("\r")[-1].startswith("100%") and "| 1/1 [" in shown.rstrip().split("\r")[-1], shown
    code, shown = _in_a_terminal("repair", recordings / "mutilated-mime-a.wav", "-o", tmp_path / "a.wav", *INTERP)
    assert code == 0, shown
    assert "scanning: 100%" in shown and "| 1/3 [" in shown and "| 3/3 [" in shown and "gap/s" in shown, shown


@pytest.mark.parametrize("windows, message", [
    ("[66]", "cannot train: [training] windows [66] do not fit the unet, whose windows are a multiple of 4 frames (2 ** depth)"),
    ("[8]", "cannot train: no window of [8] frames holds a 10 ms gap with"),
])
def test_train_refuses_windows_its_network_or_its_gaps_cannot_use_in_one_line(tmp_path, windows, message):
    """Windows the U-Net cannot run on (a traceback from inside it) or that no gap fits (an empty max())."""
    data = tmp_path / "data"
    for seed in range(4):
        write(data / f"track{seed}.wav", music_like(6, 8000, seed), 8000)
    config = _config(tmp_path, SMALL_TRAINING_CONFIG.replace("steps = 6", f"steps = 2\nwindows = {windows}"))
    result = run("train", "--config", config, "--data", data, "-o", tmp_path / "run")
    assert result.exit_code == 2 and message in result.output.splitlines()[-1] and "Traceback" not in result.output, result.output


def test_the_summary_says_no_file_needed_work_only_when_none_failed_and_counts_one_in_the_singular(tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    damaged = chord(1.0, 16000, 1)
    damaged[:, 6000:6080] = 0
    write(folder / "good.wav", damaged, 16000)
    result = run("batch", folder, "-o", out, *INTERP)
    assert "1 file: 1 repaired" in result.output and "1 gap: 1 repaired" in result.output, result.output
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk")
    result = run("batch", folder, "-o", out, *INTERP)
    assert "FAILED corrupt.wav" in result.output and "no file needed work" not in result.output, result.output
    (folder / "corrupt.wav").unlink()
    assert "no file needed work" in run("batch", folder, "-o", out, *INTERP).output
