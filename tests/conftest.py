import os

# Only melrestore's own plugins: whatever else is installed must not change the results.
os.environ["MELRESTORE_PLUGINS"] = "melrestore"

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def chord(seconds: float, rate: int, channels: int = 1, freqs=(220.0, 277.2, 329.6), level: float = 0.25) -> np.ndarray:
    """A sustained A-major chord, ``[channels, samples]`` float32, each channel a little different."""
    t = np.arange(int(seconds * rate)) / rate
    out = []
    for c in range(channels):
        wave = sum(np.sin(2 * np.pi * f * t + 0.7 * c * (i + 1)) for i, f in enumerate(freqs))
        out.append(level * wave / len(freqs) * (1 - 0.1 * c))
    return np.array(out, dtype=np.float32)


def loop(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """A one-bar drum-and-bass loop (noise hits and a bass line) played over and over."""
    rng = np.random.default_rng(seed)
    bar = np.zeros(rate // 2, dtype=np.float32)
    for hit in (0, rate // 8, rate // 4, 3 * rate // 8):
        bar[hit : hit + 2000] += 0.3 * rng.standard_normal(2000).astype(np.float32) * np.exp(-np.arange(2000) / 400)
    t = np.arange(len(bar)) / rate
    bar += 0.2 * np.sin(2 * np.pi * np.where(t < 0.25, 55.0, 82.4) * t).astype(np.float32)
    return np.tile(bar, int(seconds * 2))[None, : int(seconds * rate)]


# A U-Net small enough to train a few steps in a test, on 8 kHz audio.
SMALL_TRAINING_CONFIG = """
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
steps = 6
batch_frames = 512
learning_rate = 0.003
validate_every = 3
validation_windows = 4
max_gap_seconds = 0.35
"""


def music_like(seconds: float, rate: int, seed: int, intervals=(1, 1.26, 1.5), noise: float = 0.0) -> np.ndarray:
    """Chords (``intervals`` above a random root) that change every half second, with ``noise``
    (standard deviation) added, ``[1, samples]``."""
    rng = np.random.default_rng(seed)
    roots = 110 * 2 ** (rng.integers(0, 12, int(2 * seconds)) / 12)
    audio = np.concatenate([chord(0.5, rate, 1, freqs=tuple(r * i for i in intervals)) for r in roots], axis=1)
    return audio + noise * rng.standard_normal(audio.shape).astype(np.float32) if noise else audio


def music_excerpt() -> tuple[np.ndarray, int]:
    """A real music clip shipped in examples/clean (``[channels, samples]``, rate)."""
    audio, rate = sf.read(EXAMPLES / "clean" / "mutilated-mime-a.flac", dtype="float32", always_2d=True)
    return audio.T.copy(), rate


def write(path: Path, audio: np.ndarray, rate: int, subtype: str = "PCM_16", fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio.T, rate, subtype=subtype, format=fmt)
    return path


@pytest.fixture
def interp_engine():
    from melrestore.pipeline import PipelineOptions, build_engine

    return build_engine(PipelineOptions(inpainter="interpolation"))


def run(*args):
    """The command line, as a user types it (arguments turned into strings)."""
    from click.testing import CliRunner

    from melrestore.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def recordings(tmp_path):
    """A copy of the shipped example recordings, in ``tmp_path / "in"``."""
    import shutil

    folder = tmp_path / "in"
    shutil.copytree(EXAMPLES / "recordings", folder)
    return folder
