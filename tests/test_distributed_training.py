"""Training under torchrun: two processes train as one would, and a run resumes with another number of processes."""

import os
import shutil
import subprocess
import sys

import pytest
import torch

from conftest import SMALL_TRAINING_CONFIG, music_like, write
from melrestore.config import load_config
from melrestore.plugins.datasets import AudioFolder
from melrestore.training import Processes, stream, train

# Windows of at most 128 frames: the 3 s tracks are long enough, and a batch (512 frames) holds
# at least four windows, so each of two processes draws some.
CONFIG = SMALL_TRAINING_CONFIG + "windows = [64, 128]\n"


def _data_set(folder):
    """Five 3 s tracks of changing chords: four train, one validates."""
    for i in range(2, 7):
        write(folder / f"track{i}.wav", music_like(3, 8000, i), 8000)
    data = AudioFolder(folder)
    assert len(data.files("train")) == 4 and len(data.files("validation")) == 1
    return data


def _keeping_step_3(out_dir, copy_to):
    """A progress display that, during step 4, copies ``out_dir/last.pt`` (saved at step 3) into
    ``copy_to``: what the run leaves behind when it is killed then."""

    class Progress:
        def __init__(self, total, initial):
            pass

        def __call__(self, step, loss):
            if step == 4:
                copy_to.mkdir()
                shutil.copy(out_dir / "last.pt", copy_to / "last.pt")

        def close(self):
            pass

    return Progress


def _checkpoint(path):
    return torch.load(path, weights_only=False)


def test_each_draw_has_its_own_stream_and_torchrun_is_read_from_the_environment():
    assert stream(0, 5).random() != stream(0, 5, 0).random() != stream(0, 6, 0).random()
    assert stream(3, 5, 1).random() == stream(3, 5, 1).random()
    assert Processes.from_environment({}) == Processes(0, 1, 0)
    two = Processes.from_environment({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    assert two.distributed and not two.main


@pytest.mark.skipif(not torch.distributed.is_available(), reason="this torch has no torch.distributed")
def test_two_processes_train_as_one_and_resume_with_another_count(tmp_path):
    config_path = tmp_path / "tiny.toml"
    config_path.write_text(CONFIG)
    config = load_config(config_path)
    data = _data_set(tmp_path / "data")
    one, two = tmp_path / "one", tmp_path / "two"

    # The reference: one process, six steps; and what it would have left if killed during step 4.
    train(config, data, one, log=lambda line: None, progress_factory=_keeping_step_3(one, two))
    at_step_3 = _checkpoint(two / "last.pt")
    assert at_step_3["step"] == 3

    # That checkpoint resumed by two processes, as torchrun starts them.
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "melrestore", "train", "--config", config_path, "--data", tmp_path / "data", "-o", two, "--resume"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([str(c) for c in command], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "training in 2 processes (gloo, cpu)" in done.stderr and "resumed from" in done.stderr
    assert done.stderr.count("resumed from") == 1  # only the first process logs

    reference, resumed = _checkpoint(one / "last.pt"), _checkpoint(two / "last.pt")
    assert resumed["step"] == reference["step"] == 6
    for name, weights in reference["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][name], weights, rtol=1e-5, atol=1e-6, msg=name)
    assert [h["step"] for h in resumed["history"]] == [3, 6]
    for mine, theirs in zip(resumed["history"], reference["history"]):
        assert mine["l1"] == pytest.approx(theirs["l1"], rel=1e-5)
    # The three steps the two processes trained moved the weights by far more than that tolerance.
    moved = max((resumed["state_dict"][k] - w).abs().max().item() for k, w in at_step_3["state_dict"].items())
    assert moved > 1e-4
