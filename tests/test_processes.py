"""The batch runner against real processes and signals: dead workers, SIGTERM, SIGKILL, Ctrl-C, kills at random moments."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import EXAMPLES, chord, write
from melrestore.batch import repair_file, run_batch
from melrestore.pipeline import PipelineOptions, build_engine
from melrestore.pool import PROGRESS_INTERVAL_S, WorkerPool, _progress_sender
from melrestore.reports import REPORT_NAME

# A plugin, installed for the child processes only: a detector that dies the way the kernel's
# out-of-memory killer kills (SIGKILL) on files named *poison*, one whose process is killed so
# while it copies a file named *dies-writing* (the byte copy an output is made from, into its
# temporary), one that takes its time, and two that hold a device one process at a time may open
# (a GPU in exclusive-process mode, or memory for one copy of a model): the main process's engine
# gets it, a worker's raises or is killed.
TESTKIT = '''
import fcntl, os, shutil, signal, time
from pathlib import Path
from melrestore import hookimpl

class KillOnPoison:
    def detect(self, audio, sample_rate, path=None):
        if path is not None and "poison" in Path(path).name:
            os.kill(os.getpid(), signal.SIGKILL)
        return []

class KillWhileWriting:
    def __init__(self):
        copyfile = shutil.copyfile

        def dying(source, target, *args, **kwargs):
            copied = copyfile(source, target, *args, **kwargs)
            if "dies-writing" in Path(target).name and Path(target).parent != Path(source).parent:
                os.kill(os.getpid(), signal.SIGKILL)  # the copy is in OUT, not yet in place
            return copied

        shutil.copyfile = dying

    def detect(self, audio, sample_rate, path=None):
        return []

class Slow:
    def detect(self, audio, sample_rate, path=None):
        Path(os.environ["TESTKIT_STARTED"], f"{os.getpid()}").write_text(str(path))
        time.sleep(120)
        return []

class Exclusive:
    def __init__(self, busy="raise"):
        self.device = open(os.environ["TESTKIT_DEVICE"], "a")
        try:
            fcntl.lockf(self.device, fcntl.LOCK_EX | fcntl.LOCK_NB)  # not inherited by a fork
        except OSError:
            if busy == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError("all devices are busy or unavailable") from None

    def detect(self, audio, sample_rate, path=None):
        return []

@hookimpl
def register_gap_detectors(register):
    register("kill-on-poison", KillOnPoison)
    register("kill-while-writing", KillWhileWriting)
    register("slow", Slow)
    register("exclusive", Exclusive)
'''


@pytest.fixture
def env(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "melrestore_testkit.py").write_text(textwrap.dedent(TESTKIT))
    info = site / "melrestore_testkit-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: melrestore-testkit\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[melrestore]\nmelrestore_testkit = melrestore_testkit\n")
    started = tmp_path / "started"
    started.mkdir()
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), *sys.path]),
        "MELRESTORE_PLUGINS": "melrestore,melrestore-testkit",
        "TESTKIT_STARTED": str(started),
        "TESTKIT_DEVICE": str(tmp_path / "device"),
    }


def batch(env, in_dir, out_dir, *args, **kwargs):
    command = [sys.executable, "-c", "from melrestore.cli import cli; cli()", "batch", str(in_dir), "-o", str(out_dir),
               "--inpainter", "interpolation", *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=_like_a_terminal, **kwargs)


def _like_a_terminal() -> None:
    """Ctrl-C as in a terminal, even when this suite runs as a background job (which ignores SIGINT, inherited)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


def wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def _reap(pids) -> None:
    """Whatever a failed test left running."""
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def _recordings(tmp_path) -> Path:
    folder = tmp_path / "in"
    shutil.copytree(EXAMPLES / "recordings", folder)
    return folder


pytestmark = pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads process trees from /proc")


def test_a_killed_worker_fails_its_file_leaves_no_temporary_and_the_batch_goes_on(tmp_path, env):
    """One worker is killed while it detects, one while it writes an output's temporary: the run
    removes what the second left (not only the next run)."""
    folder = _recordings(tmp_path)
    shutil.copy(folder / "mutilated-mime-c.wav", folder / "poison.wav")
    shutil.copy(folder / "mutilated-mime-a.wav", folder / "dies-writing.wav")
    out = tmp_path / "out"
    proc = batch(env, folder, out, "--workers", "2", "--detector", "digital-silence", "--detector", "kill-on-poison",
                 "--detector", "kill-while-writing")
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, output
    assert "Traceback" not in output
    files = {f["path"]: f for f in json.loads((out / REPORT_NAME).read_text())["files"]}
    for name in ("poison.wav", "dies-writing.wav"):
        assert files[name]["status"] == "failed" and "SIGKILL" in files[name]["message"], files[name]
        assert not (out / name).exists()
    assert not list(out.rglob("*melrestore-tmp*")), "a killed worker's temporary left in OUT"
    assert [files[n]["status"] for n in ("mutilated-mime-a.wav", "more/mutilated-mime-b.flac", "mutilated-mime-c.wav")] == [
        "repaired", "repaired", "unchanged"]


@pytest.mark.parametrize("busy, problem", [
    ("raise", "gap detector 'exclusive' failed to start: all devices are busy or unavailable"),
    ("kill", "died while starting (killed by SIGKILL; the system may have run out of memory)"),
])
def test_a_worker_that_cannot_start_stops_the_batch_in_one_line_and_leaves_nothing(tmp_path, env, busy, problem):
    folder = _recordings(tmp_path)
    config = tmp_path / "pipeline.toml"
    config.write_text(f'[pipeline.options.exclusive]\nbusy = "{busy}"\n')
    out = tmp_path / "out"
    proc = batch(env, folder, out, "--workers", "2", "--detector", "exclusive", "--config", config)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, output
    assert "Traceback" not in output and problem in output.splitlines()[-1], output
    assert output.splitlines()[-1].startswith("Error: a worker process could not start: ") and "--workers 1" in output, output
    assert [p.name for p in out.rglob("*")] == [], "files left in OUT"


def _busy_batch(tmp_path, env, out):
    """A batch whose two workers are both inside a file when this returns."""
    proc = batch(env, _recordings(tmp_path), out, "--workers", "2", "--detector", "slow", start_new_session=True)
    started = Path(env["TESTKIT_STARTED"])
    assert wait_until(lambda: len(list(started.iterdir())) == 2, 300), "the workers never started"
    workers = children(proc.pid)
    assert len(workers) >= 2 and all(alive(w) for w in workers)
    return proc, workers


@pytest.mark.parametrize("how,exit_code", [("SIGTERM", 143), ("Ctrl-C", 130)])
def test_stopping_the_main_process_stops_its_workers(tmp_path, env, how, exit_code):
    out = tmp_path / "out"
    proc, workers = _busy_batch(tmp_path, env, out)
    try:
        if how == "Ctrl-C":
            os.killpg(proc.pid, signal.SIGINT)  # the terminal sends it to the whole process group
        else:
            proc.send_signal(getattr(signal, how))
        output, _ = proc.communicate(timeout=180)  # generous: the workers' own exit takes seconds on a loaded machine
        assert proc.returncode == exit_code, output
        assert "Traceback" not in output
        assert wait_until(lambda: not any(alive(w) for w in workers), 10), "workers outlived the main process"
        assert not list(out.rglob("*melrestore-tmp*"))
        # The report says the run was stopped, and names the files it left for the rerun.
        report = json.loads((out / REPORT_NAME).read_text())
        not_done = report["interrupted"]["not_done"]
        assert report["interrupted"]["by"] == how and len(not_done) >= 2
        assert not set(not_done) & {f["path"] for f in report["files"]} and set(not_done) <= {
            "mutilated-mime-a.wav", "more/mutilated-mime-b.flac", "mutilated-mime-c.wav"}
    finally:
        _reap([proc.pid, *workers])
        proc.wait()


def _tree(folder: Path) -> dict:
    """Every file's bytes, and the report's entries without timings."""
    tree = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != REPORT_NAME}
    report = json.loads((folder / REPORT_NAME).read_text())
    entries = {f["path"]: (f["status"], f["gaps"], f["message"]) for f in report["files"]}
    return {"files": tree, "report": entries}


def test_a_batch_killed_at_random_moments_finishes_as_if_never_killed(tmp_path, env):
    folder = _recordings(tmp_path)
    for i in range(2):  # more files, so kills land between them too
        shutil.copy(folder / "mutilated-mime-a.wav", folder / f"copy-{i}.wav")
    reference = tmp_path / "reference"
    run_batch(folder, reference, PipelineOptions(inpainter="interpolation"), workers=1)
    out = tmp_path / "out"
    rng = random.Random(12)
    for _ in range(3):
        proc = batch(env, folder, out, "--workers", "2")
        time.sleep(rng.uniform(1.0, 10.0))
        workers = children(proc.pid)
        proc.kill()  # SIGKILL: no chance to clean up
        proc.wait()
        # Workers die with it (one still importing notices as soon as it can run).
        died = wait_until(lambda: not any(alive(w) for w in workers), 60)
        _reap(workers)
        assert died, "workers outlived the main process"
    proc = batch(env, folder, out, "--workers", "2")
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output
    assert _tree(out) == _tree(reference)
    assert not [p for p in out.rglob(".*") if p.is_file()], "temporary files left"


def test_the_same_input_gives_the_same_bytes_for_any_worker_count(tmp_path):
    """Several files of the same shape with long gaps (the similarity repair) in different orders."""
    import soundfile as sf

    clean, rate = sf.read(EXAMPLES / "clean" / "mutilated-mime-a.flac", dtype="int16", always_2d=True)
    folder = tmp_path / "in"
    folder.mkdir()
    for i, at in enumerate((1.0, 2.0, 3.0, 4.0)):
        damaged = clean.copy()
        damaged[int(at * rate) : int((at + 0.3) * rate)] = 0
        sf.write(folder / f"clip-{i}.wav", damaged, rate, subtype="PCM_16")
    outputs = {}
    for workers in (1, 2):
        report = run_batch(folder, tmp_path / f"out-{workers}", PipelineOptions(inpainter="interpolation"), workers=workers)
        assert report["summary"]["repaired"] == 4
        outputs[workers] = {p.name: p.read_bytes() for p in sorted((tmp_path / f"out-{workers}").glob("*.wav"))}
    assert len(outputs[1]) == 4 and outputs[1] == outputs[2]
    for name, data in outputs[1].items():  # and each file repaired alone, by a fresh engine
        repair_file(build_engine(PipelineOptions(inpainter="interpolation")), folder / name, tmp_path / "alone" / name)
        assert (tmp_path / "alone" / name).read_bytes() == data, name


def _no_setup():
    pass


def _steps(job, progress):
    """A job in three steps, each reported, slower than the throttle; "dies" is killed before it ends."""
    for i in (1, 2, 3):
        progress(i / 4)
        time.sleep(PROGRESS_INTERVAL_S + 0.05)
    if job == "dies":
        os.kill(os.getpid(), signal.SIGKILL)
    progress(1.0)
    return f"{job} done"


def test_progress_reaches_the_main_process_before_the_result_and_a_worker_dying_mid_job_fails_only_its_job():
    events = []
    pool = WorkerPool(2, _no_setup, (), _steps, lambda job, exitcode: f"{job} died ({exitcode})", fork=True,
                      on_progress=lambda job, fraction: events.append((job, fraction)))
    for result in pool.run(["a", "dies", "b"]):
        events.append(result)
    results = [e for e in events if isinstance(e, str)]
    assert sorted(results) == ["a done", "b done", f"dies died ({-signal.SIGKILL})"]
    for job, fractions in (("a", [0.25, 0.5, 0.75, 1.0]), ("b", [0.25, 0.5, 0.75, 1.0]), ("dies", [0.25, 0.5, 0.75])):
        assert [f for e in events if isinstance(e, tuple) and e[0] == job for f in e[1:]] == fractions, job
        end = next(i for i, e in enumerate(events) if isinstance(e, str) and e.startswith(job))
        assert all(i < end for i, e in enumerate(events) if isinstance(e, tuple) and e[0] == job), events


def test_a_worker_sends_progress_at_most_every_interval_and_always_the_end():
    import multiprocessing

    ours, theirs = multiprocessing.Pipe()
    send = _progress_sender(theirs)
    started = time.monotonic()
    for done in range(1, 1001):  # a thousand tiny gaps
        send(done / 1000)
    elapsed = time.monotonic() - started
    sent = []
    while ours.poll():
        sent.append(ours.recv())
    assert sent[0] == ("progress", 0.001) and sent[-1] == ("progress", 1.0)
    assert len(sent) <= 2 + elapsed / PROGRESS_INTERVAL_S


@pytest.mark.parametrize("workers", [1, 2])
def test_a_batch_reports_how_much_of_each_file_is_done_before_the_file_itself(tmp_path, workers):
    rate = 22050
    for name, starts in (("one.wav", (0.5, 1.0, 1.5)), ("two.wav", (0.7, 1.4))):
        audio = chord(2.0, rate, 1)
        for at in starts:
            audio[:, int(at * rate) : int(at * rate) + 1000] = 0.0  # 45 ms: the Mel pipeline's
        write(tmp_path / "in" / name, audio, rate)
    events = []
    report = run_batch(tmp_path / "in", tmp_path / "out", PipelineOptions(inpainter="interpolation"), workers=workers,
                       on_file=lambda r: events.append(r.path), on_progress=lambda name, fraction: events.append((name, fraction)))
    assert report["summary"]["repaired"] == 2 and report["summary"]["gaps_repaired"] == 5
    for name in ("one.wav", "two.wav"):
        fractions = [e[1] for e in events if isinstance(e, tuple) and e[0] == name]
        assert fractions and fractions == sorted(fractions) and 0 <= fractions[0] and fractions[-1] == 1.0, events
        assert events.index(name) > max(i for i, e in enumerate(events) if isinstance(e, tuple) and e[0] == name)
    assert sorted(e for e in events if isinstance(e, str)) == ["one.wav", "two.wav"]


def test_a_killed_repairs_scratch_folder_is_removed_by_the_next_repair_and_a_running_ones_kept(tmp_path, env):
    """``repair`` writes in a hidden folder beside OUT_FILE that its process holds locked: the next
    repair into that folder removes those of killed repairs, never one still being written."""
    source = write(tmp_path / "in" / "song.wav", chord(2.0, 44100, 2), 44100)
    out = tmp_path / "out"
    out.mkdir()

    def slow_repair(name):
        command = [sys.executable, "-c", "from melrestore.cli import cli; cli()", "repair", str(source), "-o", str(out / name),
                   "--inpainter", "interpolation", "--detector", "slow"]
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    started = Path(env["TESTKIT_STARTED"])
    scratch = lambda: sorted(p for p in out.iterdir() if p.name.startswith(".melrestore-"))  # noqa: E731
    killed = slow_repair("killed.wav")
    running = None
    try:
        assert wait_until(lambda: len(list(started.iterdir())) == 1, 120), "the repair never started"
        killed.kill()
        killed.wait()
        [left] = scratch()
        running = slow_repair("running.wav")
        assert wait_until(lambda: len(list(started.iterdir())) == 2, 120), "the second repair never started"
        [kept] = [p for p in scratch() if p != left]
        result = subprocess.run([sys.executable, "-c", "from melrestore.cli import cli; cli()", "repair", str(source),
                                 "-o", str(out / "song.wav"), "--inpainter", "interpolation"],
                                env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        assert scratch() == [kept] and (out / "song.wav").is_file()
    finally:
        _reap([killed.pid] + ([running.pid] if running else []))
        killed.wait()
        if running:
            running.wait()
