"""Training under torchrun: two processes train as one would, and a run resumes with another number of processes."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import chord, write
from melrestore.config import load_config
from melrestore.plugins.datasets import AudioFolder
from melrestore.training import Processes, stream, train

RATE = 8000
CONFIG = """
[mel]
sample_rate = 8000
n_fft = 256
hop_length = 64
n_mels = 32

[model]
base_channels = 4
depth = 2
in_channels = 3

[training]
steps = 4
batch_frames = 512
validate_every = 2
validation_windows = 4
max_gap_seconds = 0.35
windows = [64, 128]
"""


def _data_set(folder):
    """Five 3 s tracks of changing chords with a little noise: four train, one validates."""
    rng = np.random.default_rng(0)
    for i in range(2, 7):
        roots = 110 * 2 ** (rng.integers(0, 12, size=6) / 12)
        audio = np.concatenate([chord(0.5, RATE, 1, freqs=(r, r * 1.26, r * 1.5)) for r in roots], axis=1)
        write(folder / f"track{i}.wav", audio + 0.01 * rng.standard_normal(audio.shape).astype(np.float32), RATE)
    data = AudioFolder(folder)
    assert len(data.files("train")) == 4 and len(data.files("validation")) == 1
    return data


def _keeping_step_2(out_dir, copy_to):
    """A progress display that, during step 3, copies ``out_dir/last.pt`` (saved at step 2) into
    ``copy_to``: what the run leaves behind when it is killed then."""

    class Progress:
        def __init__(self, total, initial):
            pass

        def __call__(self, step, loss):
            if step == 3:
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

    # The reference: one process, four steps; and what it would have left if killed during step 3.
    train(config, data, one, log=lambda line: None, progress_factory=_keeping_step_2(one, two))
    at_step_2 = _checkpoint(two / "last.pt")
    assert at_step_2["step"] == 2

    # That checkpoint resumed by two processes, as torchrun starts them.
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "melrestore", "train", "--config", config_path, "--data", tmp_path / "data", "-o", two, "--resume"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([str(c) for c in command], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "training in 2 processes (gloo, cpu)" in done.stderr and "resumed from" in done.stderr
    assert done.stderr.count("resumed from") == 1  # only the first process logs

    reference, resumed = _checkpoint(one / "last.pt"), _checkpoint(two / "last.pt")
    assert resumed["step"] == reference["step"] == 4
    for name, weights in reference["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][name], weights, rtol=1e-5, atol=1e-6, msg=name)
    assert [h["step"] for h in resumed["history"]] == [2, 4]
    for mine, theirs in zip(resumed["history"], reference["history"]):
        assert mine["l1"] == pytest.approx(theirs["l1"], rel=1e-5)
    # The two steps the two processes trained moved the weights by far more than that tolerance.
    moved = max((resumed["state_dict"][k] - w).abs().max().item() for k, w in at_step_2["state_dict"].items())
    assert moved > 1e-4
