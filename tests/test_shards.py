"""One batch split over machines: shards cover every file once, a missing or killed shard is
rerun alone, and the merged report is the single-process run's."""

import json

import pytest

from conftest import chord, run, write
from melrestore.batch import run_batch
from melrestore.pipeline import PipelineOptions
from melrestore.reports import REPORT_NAME
from melrestore.shards import Shard, ShardError, parse_shard, resolve_shard, split

INTERP = ["--inpainter", "interpolation", "--workers", "1"]
RATE = 16000


def _archive(folder):
    """Clips of different lengths, most with a 10 ms dropout of digital silence (LSAR fills it),
    in two folders, with a file that is not audio and a folder named like one."""
    for i in range(7):
        audio = chord(0.4 + 0.15 * i, RATE, channels=1 + i % 2, freqs=(220.0 + 30 * i, 330.0))
        if i % 3:
            audio[:, 3000:3160] = 0.0
        write(folder / ("live" if i % 2 else "studio") / f"take{i}.wav", audio, RATE)
    (folder / "studio" / "broken.wav").write_bytes(b"RIFF not really a wave file")
    (folder / "album.flac").mkdir()
    return folder


@pytest.fixture
def archive(tmp_path):
    return _archive(tmp_path / "in")


def _report(path):
    return json.loads(path.read_text())


def _outcome(report):
    """What a report says was done, leaving out how long it took and which run did it."""
    files = [{k: f[k] for k in ("path", "status", "message", "gaps", "warnings")} for f in report["files"]]
    summary = {k: v for k, v in report["summary"].items() if k not in ("audio_seconds", "wall_seconds", "realtime_factor", "existing_kept")}
    return files, summary


def _tree(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.wav")) if p.is_file()}


# -- which files a shard gets --------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_shards_cover_every_file_once_in_parts_of_about_equal_size(tmp_path, count):
    sizes = [(7 * i * i) % 1000 + 10 for i in range(40)]  # a spread of file sizes
    sources = []
    for i, size in enumerate(sizes):
        path = tmp_path / f"f{i:02d}.wav"
        path.write_bytes(b"x" * size)
        sources.append((path, path.name))
    parts = [sorted(Shard(k, count).select(list(reversed(sources)))[0]) for k in range(1, count + 1)]
    names = [name for part in parts for _, name in part]
    assert sorted(names) == sorted(n for _, n in sources) and len(names) == len(set(names))
    # Consecutive runs of the sorted list, each within one file's size of an equal share.
    assert [n for part in parts for _, n in part] == sorted(names)
    totals = [sum(p.stat().st_size for p, _ in part) for part in parts]
    assert max(totals) - sum(sizes) / count <= max(sizes) and sum(sizes) / count - min(totals) <= max(sizes)
    # The same inputs give the same split, however they are listed.
    assert parts == [sorted(Shard(k, count).select(sources)[0]) for k in range(1, count + 1)]


def test_the_split_weighs_bytes_not_files():
    # One large file and eight small ones: the large one is a shard on its own.
    assert split([800] + [100] * 8, 2) == [0] + [1] * 8
    assert split([0, 0, 0, 0], 2) == [0, 0, 1, 1]  # empty files still count


@pytest.mark.parametrize("option, count, environ, expected", [
    ("2/4", None, {}, (2, 4)),
    (" 4 / 4 ", None, {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2"}, (4, 4)),  # --shard wins
    (None, None, {"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MAX": "4"}, (4, 4)),
    (None, 16, {"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_COUNT": "2", "SLURM_ARRAY_TASK_MAX": "9"}, (7, 16)),  # --array=7,9
    (None, 3, {"JOB_COMPLETION_INDEX": "2"}, (3, 3)),
    (None, None, {}, None),
    ("1/1", None, {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2"}, None),  # the way out of sharding
])
def test_the_shard_comes_from_the_option_or_the_scheduler(option, count, environ, expected):
    shard = resolve_shard(option, count, environ)
    assert (shard and (shard.index, shard.count)) == expected


@pytest.mark.parametrize("option, count, environ, says", [
    ("3", None, {}, "give K/N"),
    ("0/4", None, {}, "no shard 0 of 4"),
    ("5/4", None, {}, "counted from 1 to 4"),
    ("1/0", None, {}, "at least 1"),
    (None, None, {"JOB_COMPLETION_INDEX": "0"}, "--shard-count"),
    (None, 2, {}, "scheduler's task number"),
    (None, None, {"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "4"}, "no shard 0 of 4"),  # --array=0-3
    (None, None, {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "1", "SLURM_ARRAY_TASK_MAX": "3"}, "submit --array=1-N"),
    (None, None, {"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "2"}, "not a whole number"),
])
def test_a_shard_that_cannot_be_is_refused_saying_why(option, count, environ, says):
    with pytest.raises(ShardError, match=says):
        resolve_shard(option, count, environ)


def test_a_bad_shard_is_a_one_line_usage_error(archive, tmp_path):
    result = run("batch", archive, "-o", tmp_path / "out", "--shard", "0/3", *INTERP)
    assert result.exit_code == 2 and "shards are counted from 1 to 3" in result.output
    assert not (tmp_path / "out").exists()
    assert parse_shard("2/3") == Shard(2, 3)


# -- shards into one output tree -----------------------------------------------


class _Killed(BaseException):
    """Stops a shard the way SIGKILL does: no report, its journal left behind."""


def _kill_after_first_file(report):
    raise _Killed


def test_shards_rerun_alone_complete_the_tree_and_merge_into_the_single_run_report(archive, tmp_path):
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    assert run("batch", archive, "-o", single, *INTERP).exit_code == 1  # broken.wav fails

    # Shard 1 by option, shard 3 as a Slurm array task; shard 2 not yet run.
    assert run("batch", archive, "-o", sharded, "--shard", "1/3", *INTERP).exit_code in (0, 1)
    from click.testing import CliRunner

    from melrestore.cli import cli
    slurm = {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MAX": "3"}
    result = CliRunner().invoke(cli, ["batch", str(archive), "-o", str(sharded), *INTERP], env=slurm)
    assert "shard 3/3 (SLURM_ARRAY_TASK_ID=3 of 3)" in result.output and (sharded / "melrestore-report.3-of-3.json").is_file()
    files = sum(f["status"] != "skipped" for f in _report(sharded / "melrestore-report.3-of-3.json")["files"])  # album.flac is no file
    assert f": {files} file{'s' * (files != 1)} of 8" in result.output  # of the 7 takes and broken.wav
    merged = run("report", sharded)
    assert merged.exit_code == 1 and "2 of 3 shards complete" in merged.output and "shard 2/3 MISSING" in merged.output

    # Shard 2 killed after its first file: the journal says what it did.
    with pytest.raises(_Killed):
        run_batch(archive, sharded, PipelineOptions(inpainter="interpolation"), on_file=_kill_after_first_file, shard=Shard(2, 3))
    merged = run("report", sharded)
    assert "shard 2/3 INCOMPLETE: running or killed: 1 file done" in merged.output

    # Rerun alone, as a Kubernetes Indexed Job's second pod: the tree is complete.
    k8s = {"JOB_COMPLETION_INDEX": "1", "MELRESTORE_SHARD_COUNT": "3"}
    result = CliRunner().invoke(cli, ["batch", str(archive), "-o", str(sharded), *INTERP], env=k8s)
    assert "shard 2/3" in result.output
    merged = run("report", sharded)
    assert "3 of 3 shards complete" in merged.output and "MISSING" not in merged.output and "INCOMPLETE" not in merged.output
    assert merged.exit_code == 1 and "FAILED studio/broken.wav" in merged.output  # the one bad file, once

    assert _outcome(_report(sharded / REPORT_NAME)) == _outcome(_report(single / REPORT_NAME))
    assert _tree(sharded) == _tree(single)
    assert not list(sharded.glob(".melrestore-journal*"))


def test_report_of_a_shard_known_only_by_its_journal_names_no_speed(archive, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(_Killed):
        run_batch(archive, out, PipelineOptions(inpainter="interpolation"), on_file=_kill_after_first_file, shard=Shard(1, 2))
    result = run("report", out)
    assert "shard 1/2 INCOMPLETE: running or killed: 1 file done" in result.output
    speed = next(line for line in result.output.splitlines() if "s of audio" in line)
    assert " in " not in speed and "real time" not in speed, speed  # the journal holds no times
    run_batch(archive, out, PipelineOptions(inpainter="interpolation"), shard=Shard(2, 2))  # the other, complete
    result = run("report", out)
    assert "shard 1/2 INCOMPLETE" in result.output and "real time" not in result.output  # its audio has no time


def test_a_shard_leaves_the_temporaries_of_other_shards_alone(archive, tmp_path):
    out = tmp_path / "out"
    sources = sorted(p.relative_to(archive).as_posix() for p in archive.rglob("*.wav") if p.is_file())
    first, last = sources[0], sources[-1]  # in shards 1/2 and 2/2
    for name in (first, last):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).with_name(f".{(out / name).name}.abc123.melrestore-tmp").write_bytes(b"being written")
    run("batch", archive, "-o", out, "--shard", "2/2", *INTERP)
    left = sorted(p.name for p in out.rglob("*.melrestore-tmp"))
    assert left == [f".{first.split('/')[-1]}.abc123.melrestore-tmp"]


def test_report_exits_0_once_every_shard_is_complete_with_no_file_failed(tmp_path):
    folder, out, options = tmp_path / "in", tmp_path / "out", PipelineOptions(inpainter="interpolation")
    for i in range(3):
        audio = chord(0.4, RATE, freqs=(220.0 + 30 * i, 330.0))
        audio[:, 3000:3160] = 0.0
        write(folder / f"take{i}.wav", audio, RATE)
    run_batch(folder, out, options, shard=Shard(1, 2))
    merged = run("report", out)
    assert merged.exit_code == 1 and "shard 2/2 MISSING" in merged.output
    run_batch(folder, out, options, shard=Shard(2, 2))
    merged = run("report", out)
    assert merged.exit_code == 0, merged.output
    assert "2 of 2 shards complete" in merged.output and "3 files: 3 repaired" in merged.output


def test_report_says_when_there_is_nothing_to_merge(tmp_path):
    result = run("report", tmp_path)
    assert result.exit_code == 2 and "no shard reports" in result.output


def test_shards_that_saw_other_inputs_are_not_complete_together(archive, tmp_path):
    """A file added between two shards' runs moves the split: together they may miss files."""
    out, options = tmp_path / "out", PipelineOptions(inpainter="interpolation")
    run_batch(archive, out, options, shard=Shard(1, 2))
    write(archive / "studio" / "added.wav", chord(0.5, RATE, channels=1), RATE)
    run_batch(archive, out, options, shard=Shard(2, 2))
    assert _report(out / "melrestore-report.1-of-2.json")["input"] == str(archive)  # the inputs named, not their digest
    result = run("report", out)
    assert result.exit_code == 1 and "0 of 2 shards complete" in result.output
    assert "the shards saw different inputs (files added, removed or changed between their runs): rerun every shard" in result.output


def test_report_does_not_replace_a_newer_whole_runs_report(archive, tmp_path):
    out, options = tmp_path / "out", PipelineOptions(inpainter="interpolation")
    for index in (1, 2):
        run_batch(archive, out, options, shard=Shard(index, 2))
    write(archive / "studio" / "added.wav", chord(0.5, RATE, channels=1), RATE)
    whole = run_batch(archive, out, options)  # a whole run since, over the grown folder
    result = run("report", out)
    assert result.exit_code == 2 and "is a whole run's report, newer than the shards' reports" in result.output
    assert _report(out / REPORT_NAME)["files"] == whole["files"]


def test_report_after_some_shards_keeps_the_whole_runs_records_for_the_rest(archive, tmp_path):
    """A whole run, then shard 1/2 alone, then `report`: the merge must not drop the whole run's
    entries of shard 2's files (shard 2 would redo them) nor the names of its orphans."""
    out, options = tmp_path / "out", PipelineOptions(inpainter="interpolation")
    gone = write(archive / "studio" / "gone.wav", chord(0.5, RATE, channels=1), RATE)
    run_batch(archive, out, options)
    gone.unlink()
    whole = run_batch(archive, out, options)
    assert whole["orphaned"] == ["studio/gone.wav"]
    run_batch(archive, out, options, shard=Shard(1, 2))
    report = _report(out / "melrestore-report.1-of-2.json")  # as an older version wrote it: no orphans named
    del report["orphaned"], report["carried_entries"]
    (out / "melrestore-report.1-of-2.json").write_text(json.dumps(report))
    run("report", out)
    merged = _report(out / REPORT_NAME)
    assert sorted(f["path"] for f in merged["files"]) == sorted(f["path"] for f in whole["files"])
    assert merged["orphaned"] == ["studio/gone.wav"]
    second = run_batch(archive, out, options, shard=Shard(2, 2))
    assert all(f["from_earlier_run"] for f in second["files"] if f["status"] in ("repaired", "unchanged"))
