"""The command line as users run it: the default pipeline end to end, every command's exit status,
--json, the pipeline flags, lossy inputs, and training -> export -> use of a model."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from conftest import EXAMPLES, SMALL_TRAINING_CONFIG, chord, loop, music_like, run, write
from melrestore import audio as audio_io
from melrestore.cli import cli
from melrestore.metrics import gap_metrics
from melrestore.plugins.datasets import split_of


def test_the_default_pipeline_end_to_end(recordings, tmp_path):
    """U-Net (ONNX) + LSAR + similarity, as `melrestore batch` runs with no flags."""
    rate = 22050
    damaged = loop(10.0, rate)
    damaged[:, 5 * rate : 5 * rate + int(0.4 * rate)] = 0.0
    write(recordings / "loop.wav", damaged, rate)
    out = tmp_path / "out"
    result = run("batch", recordings, "-o", out, "--workers", "1", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report == json.loads((out / "melrestore-report.json").read_text())
    assert report["summary"]["gaps_found"] == 7 and report["summary"]["gaps_repaired"] == 7
    methods = {(f["path"], g["start"]): g["method"] for f in report["files"] for g in f["gaps"]}
    assert methods[("more/mutilated-mime-b.flac", 48000)] == "short-gap"  # 6 ms: LSAR
    assert methods[("mutilated-mime-a.wav", 198450)] == "mel"  # 1 s that nothing matches: the U-Net
    assert methods[("loop.wav", 5 * rate)] == "long-gap"  # the loop repeats: copied

    manifest = json.loads((EXAMPLES / "gaps.json").read_text())
    for name, entry in manifest.items():
        clean = audio_io.read(EXAMPLES / entry["clean"]).as_float()
        repaired = audio_io.read(out / name).as_float()
        before = audio_io.read(recordings / name).as_float()
        file_rate = audio_io.read(out / name).sample_rate
        keep = np.ones(clean.shape[1], dtype=bool)
        for start, end in entry["gaps"]:
            keep[start:end] = False
            filled, empty = gap_metrics(clean, repaired, start, end, file_rate), gap_metrics(clean, before, start, end, file_rate)
            # The fill has the music's spectrum: far closer than the silence it replaced (~70 dB).
            assert filled["lsd_db"] < 25 and filled["lsd_db"] < empty["lsd_db"] - 30, (name, start)
            assert filled["log_mel_l1"] < 1.5, (name, start)
        assert np.array_equal(before[:, keep], repaired[:, keep])


def test_detect_lists_gaps_as_json_and_exits_1_when_a_file_fails(recordings):
    result = run("detect", recordings, "--json")
    assert result.exit_code == 0, result.output
    found = {f["path"]: [[g["start"], g["end"]] for g in f["gaps"]] for f in json.loads(result.stdout)["files"]}
    manifest = json.loads((EXAMPLES / "gaps.json").read_text())
    assert found == {name: entry["gaps"] for name, entry in manifest.items()}
    (recordings / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk")
    result = run("detect", recordings)
    assert result.exit_code == 1
    assert "corrupt.wav: FAILED" in result.output


def test_repair_exit_status(tmp_path):
    src = EXAMPLES / "recordings" / "mutilated-mime-a.wav"
    result = run("repair", src, "-o", tmp_path / "a.wav", "--inpainter", "interpolation")
    assert result.exit_code == 0 and "3 of 3 gaps repaired" in result.output
    again = CliRunner().invoke(cli, ["repair", str(src), "-o", str(tmp_path / "a.wav")])
    assert again.exit_code == 2 and "exists" in again.output
    assert CliRunner().invoke(cli, ["repair", str(src), "-o", str(tmp_path / "b.wav"), "--vocoder", "nope"]).exit_code == 2


def test_the_pipeline_flags_reach_the_engine(recordings, tmp_path):
    result = run("batch", recordings, "-o", tmp_path / "out", "--workers", "1", "--json", "--inpainter", "interpolation",
                 "--min-gap-ms", 10, "--short-gap-ms", 30, "--long-gap-ms", 0, "--max-gap", 0.5)
    assert result.exit_code == 0, result.output
    gaps = {(f["path"], g["start"]): g for f in json.loads(result.stdout)["files"] for g in f["gaps"]}
    # --min-gap-ms 10: the 6 ms dropout is no gap; --short-gap-ms 30: the 25 ms one goes to LSAR;
    # --long-gap-ms 0: the 250 ms one to the Mel pipeline; --max-gap 0.5: the 1 s one is left alone.
    assert ("more/mutilated-mime-b.flac", 48000) not in gaps
    assert gaps[("mutilated-mime-a.wav", 66150)]["method"] == "short-gap"
    assert gaps[("mutilated-mime-a.wav", 132300)]["method"] == "mel"
    assert gaps[("mutilated-mime-a.wav", 198450)]["status"] == "skipped"
    assert gaps[("more/mutilated-mime-b.flac", 120000)]["method"] == "mel"  # 400 ms, no similarity


@pytest.mark.parametrize("fmt,subtype,ext", [("OGG", "VORBIS", "ogg"), ("MP3", "MPEG_LAYER_III", "mp3")])
def test_lossy_inputs_are_repaired_and_the_report_says_what_changed(tmp_path, fmt, subtype, ext):
    rate = 44100
    damaged = chord(2.0, rate, 2)
    damaged[:, rate : rate + rate // 10] = 0.0
    src = write(tmp_path / "in" / f"song.{ext}", damaged, rate, subtype=subtype, fmt=fmt)
    # The encoder may smear the dropout's digital silence, so it is marked by hand as well.
    (tmp_path / "in" / "song.gaps.json").write_text(json.dumps({"gaps": [{"start": 1.0, "end": 1.1}]}))
    result = run("batch", tmp_path / "in", "-o", tmp_path / "out", "--workers", "1", "--json", "--inpainter", "interpolation")
    assert result.exit_code == 0, result.output
    entry = json.loads(result.stdout)["files"][0]
    assert entry["status"] == "repaired" and len(entry["gaps"]) == 1 and "sidecar" in entry["gaps"][0]["reason"]
    assert "lossy" in entry["message"] and "outside the gaps" in entry["message"]
    repaired = tmp_path / "out" / src.name
    assert sf.info(repaired).format == fmt and sf.info(repaired).channels == 2
    filled = audio_io.read(repaired).as_float()[:, rate + 2000 : rate + rate // 10 - 2000]
    assert np.sqrt(np.mean(filled**2)) > 0.5 * np.sqrt(np.mean(chord(2.0, rate, 2)[:, rate : rate + rate // 10] ** 2))


HOLD = '''
from melrestore import hookimpl

class Silent:
    """Returns the segment unchanged: the gap stays silent."""
    def vocode(self, log_mel, segment, missing, frontend):
        return segment.copy()

@hookimpl
def register_vocoders(register):
    register("silent", Silent)
'''


def _install(tmp_path, monkeypatch, module: str, source: str) -> None:
    """Install ``source`` as the plugin module ``module`` of a distribution, as pip would, and let
    melrestore load it (with its own plugins only); the module is unloaded when the test ends."""
    from melrestore import registry

    (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
    distribution = f"melrestore-{module.replace('_', '-')}"
    info = tmp_path / f"{distribution.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[melrestore]\n{module} = {module}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(registry.ENV_VAR, f"melrestore,{distribution}")
    monkeypatch.setattr(registry, "_registry", None)
    monkeypatch.delitem(sys.modules, module, raising=False)  # unloaded again at the end


def test_check_plugin(tmp_path, monkeypatch):
    result = run("check-plugin", "griffin-lim")
    assert result.exit_code == 0 and "griffin-lim keeps the vocoder contract" in result.output
    assert result.output.count("ok ") == 6
    assert CliRunner().invoke(cli, ["check-plugin", "wavenet"]).exit_code == 2
    # An installed vocoder that breaks the contract fails it, saying which rule.
    _install(tmp_path, monkeypatch, "silent_vocoder", HOLD)
    result = run("check-plugin", "silent")
    assert result.exit_code == 1 and "FAIL  the fill is (nearly) silent" in result.output


BROKEN = '''
from melrestore import hookimpl

class Crashing:
    def vocode(self, log_mel, segment, missing, frontend):
        raise RuntimeError("CUDA out of memory")

class Overreaching:
    def repair(self, audio, start, end, sample_rate):
        return audio[:, [end + audio.shape[1]]]  # reads past the end of the file

class Nameless:
    """Has no vocode."""

@hookimpl
def register_vocoders(register):
    register("crashing", Crashing)
    register("nameless", Nameless)

@hookimpl
def register_sample_repairers(register):
    register("overreaching", Overreaching)
'''


def test_check_plugin_fails_a_method_that_raises_and_an_object_without_a_method_in_one_line(tmp_path, monkeypatch):
    _install(tmp_path, monkeypatch, "broken_plugins", BROKEN)
    for name, line in (("crashing", "FAIL  vocoder 'crashing' raised RuntimeError: CUDA out of memory"),
                       ("overreaching", "FAIL  sample repairer 'overreaching' raised IndexError: index "),
                       ("nameless", "FAIL  vocoder 'nameless' (plugin 'broken_plugins') breaks the vocoder contract: it has no vocode")):
        result = run("check-plugin", name)  # an exception would come out here
        assert result.exit_code == 1, result.output
        assert result.output.splitlines()[-1].startswith(line), result.output
    assert CliRunner().invoke(cli, ["check-plugin", "crashin"]).exit_code == 2  # a usage error: no such plugin


def test_train_export_and_use_a_model_from_the_command_line(tmp_path):
    data = tmp_path / "music"
    names = [f"track{i}.wav" for i in range(40)]
    chosen = [n for n in names if split_of(n, 15) == "validation"][:1] + [n for n in names if split_of(n, 15) == "train"][:2]
    for seed, name in enumerate(chosen):
        write(data / name, music_like(6, 8000, seed), 8000)
    (tmp_path / "small.toml").write_text(SMALL_TRAINING_CONFIG)

    result = run("train", "--config", tmp_path / "small.toml", "--data", data, "-o", tmp_path / "run")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["l1"] > 0 and "interp_l1" in metrics
    assert (tmp_path / "run" / "best.pt").is_file() and (tmp_path / "run" / "last.pt").is_file()
    saved = (tmp_path / "run" / "last.pt").read_bytes()
    again = run("train", "--config", tmp_path / "small.toml", "--data", data, "-o", tmp_path / "run")
    assert again.exit_code == 2 and "holds a run (last.pt, best.pt): --resume to continue it" in again.output
    assert (tmp_path / "run" / "last.pt").read_bytes() == saved  # not trained over
    (tmp_path / "other.toml").write_text(SMALL_TRAINING_CONFIG.replace("steps = 6", "steps = 6\nseed = 3"))
    other = run("train", "--config", tmp_path / "other.toml", "--data", data, "-o", tmp_path / "run", "--resume")
    assert other.exit_code == 2 and "trained with other settings (seed differs)" in other.output
    finished = run("train", "--config", tmp_path / "small.toml", "--data", data, "-o", tmp_path / "run", "--resume")
    assert finished.exit_code == 0 and "is finished (step 6 of 6): nothing to train" in finished.output
    assert json.loads(finished.stdout) == metrics and (tmp_path / "run" / "last.pt").read_bytes() == saved

    models = tmp_path / "models"
    result = run("export-onnx", tmp_path / "run" / "best.pt", "-o", models / "unet-44k.onnx", "--example", data / chosen[0])
    assert result.exit_code == 0, result.output
    assert "real: max abs difference" in result.output and "worst difference" in result.output

    # MELRESTORE_CHECKPOINTS points the default inpainter at the new model: it analyses at 8 kHz.
    damaged = music_like(4, 8000, 9)
    damaged[:, 16000:17600] = 0.0
    write(tmp_path / "song.wav", damaged, 8000)
    script = textwrap.dedent(f"""
        from pathlib import Path
        from melrestore.batch import repair_file
        from melrestore.pipeline import PipelineOptions, build_engine
        engine = build_engine(PipelineOptions(long_gap_ms=0))
        report = repair_file(engine, Path({str(tmp_path / 'song.wav')!r}), Path({str(tmp_path / 'out.wav')!r}))
        print(engine.settings.sample_rate, engine.inpainter.window_frames, report.status, report.gaps[0]['method'])
    """)
    env = {**os.environ, "MELRESTORE_CHECKPOINTS": str(models), "MELRESTORE_PLUGINS": "melrestore"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["8000", "(64,", "128)", "repaired", "mel"]
