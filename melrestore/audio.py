"""Reading and writing audio files with soundfile, keeping the file's own format.

PCM files are read as int32 (libsndfile shifts 8/16/24-bit samples up
losslessly) so that writing them back reproduces every untouched sample
bit for bit; float files are read in their own precision.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif")

PCM_BITS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32}
LOSSY_FORMATS = {"OGG", "MP3"}


class AudioError(Exception):
    """The file is not audio we can read or write."""


@dataclass
class Audio:
    """Samples as stored (``[samples, channels]``), plus what is needed to write them back."""

    samples: np.ndarray
    sample_rate: int
    format: str
    subtype: str
    endian: str

    @property
    def channels(self) -> int:
        return self.samples.shape[1]

    @property
    def frames(self) -> int:
        return self.samples.shape[0]

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate

    @property
    def is_lossy(self) -> bool:
        return self.format in LOSSY_FORMATS

    @property
    def lsb(self) -> float:
        """One quantisation step, as a float in [-1, 1] units (16-bit for lossy/float files)."""
        return 2.0 ** (1 - PCM_BITS.get(self.subtype, 16))

    def as_float(self) -> np.ndarray:
        """``[channels, samples]`` float32 in [-1, 1]."""
        if self.samples.dtype == np.int32:
            return (self.samples.T / 2.0**31).astype(np.float32)
        return self.samples.T.astype(np.float32)

    def replace_span(self, start: int, end: int, fill: np.ndarray) -> None:
        """Replace samples ``start:end`` (all channels) by ``fill`` ``[channels, n]``, quantised to the file's depth."""
        fill = np.clip(np.asarray(fill, dtype=np.float64).T, -1.0, 1.0)
        if self.samples.dtype == np.int32:
            bits = PCM_BITS.get(self.subtype, 32)
            step = 2.0 ** (32 - bits)
            q = np.round(fill * 2.0**31 / step) * step
            self.samples[start:end] = np.clip(q, -(2.0**31), 2.0**31 - step).astype(np.int32)
        else:
            self.samples[start:end] = fill.astype(self.samples.dtype)


def read(path: str | os.PathLike) -> Audio:
    try:
        info = sf.info(str(path))
        dtype = "int32" if info.subtype in PCM_BITS else ("float64" if info.subtype == "DOUBLE" else "float32")
        samples, rate = sf.read(str(path), dtype=dtype, always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(f"cannot read audio: {exc}") from None
    if samples.shape[0] == 0:
        raise AudioError("file holds no samples")
    return Audio(samples, rate, info.format, info.subtype, info.endian)


@contextlib.contextmanager
def _atomic_target(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp-{os.getpid()}", dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_atomic(audio: Audio, path: str | os.PathLike) -> None:
    """Write in the file's own format; a killed run never leaves a half-written file."""
    with _atomic_target(path) as tmp:
        sf.write(tmp, audio.samples, audio.sample_rate, format=audio.format, subtype=audio.subtype, endian=audio.endian)


def copy_atomic(source: str | os.PathLike, path: str | os.PathLike) -> None:
    with _atomic_target(path) as tmp:
        shutil.copy2(source, tmp)


def find_audio_files(root: str | os.PathLike) -> list[Path]:
    """Audio files below ``root`` (recursive, sorted, hidden files skipped)."""
    root = Path(root)
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith(".")
    )
