"""Reading and writing audio files with soundfile, keeping the file's own format.

PCM files are read as int32 (libsndfile shifts 8/16/24-bit samples up
losslessly) so that writing them back reproduces every untouched sample
bit for bit; float files are read in their own precision.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from .container import can_patch, copy_tags, patch_samples, pcm_layout

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif")

PCM_BITS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32}
LOSSY_FORMATS = {"OGG", "MP3"}

# Every temporary file melrestore writes ends so; a later run removes the ones a killed run left.
TEMP_SUFFIX = ".melrestore-tmp"


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
    warnings: list[str] = field(default_factory=list)

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
        with open(path, "rb"):  # the operating system's own reason (permission, missing, ...), not libsndfile's
            pass
        info = sf.info(str(path))
        dtype = "int32" if info.subtype in PCM_BITS else ("float64" if info.subtype == "DOUBLE" else "float32")
        samples, rate = sf.read(str(path), dtype=dtype, always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(f"cannot read audio: {exc}") from None
    if samples.shape[0] == 0:
        raise AudioError("file holds no samples")
    audio = Audio(samples, rate, info.format, info.subtype, info.endian)
    layout = pcm_layout(path)
    if layout is not None and layout.available_bytes < layout.declared_bytes:
        audio.warnings.append(
            f"truncated file: its header declares {layout.declared_bytes} bytes of samples, "
            f"the file holds {layout.available_bytes} ({audio.duration:.3f} s were read)"
        )
    return audio


@contextlib.contextmanager
def atomic_target(path: str | os.PathLike, mode_of: str | os.PathLike | None = None):
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds.

    The file gets ``mode_of``'s permission bits, or without it the usual ones (0666 less the
    umask), never mkstemp's 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, os.stat(mode_of).st_mode & 0o7777 if mode_of is not None else _default_mode())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_repaired(audio: Audio, source: str | os.PathLike, path: str | os.PathLike, spans) -> None:
    """Write ``audio``, whose samples differ from ``source``'s only in ``spans`` ((start, end) pairs), to ``path``.

    PCM WAV/AIFF: the spans are patched into a byte copy of ``source``, which keeps every chunk
    and tag.  Other formats are written by libsndfile and get ``source``'s tags copied over.
    Atomic: a killed run never leaves a half-written file.
    """
    layout = pcm_layout(source)
    with atomic_target(path, mode_of=source) as tmp:
        if can_patch(audio.subtype, layout):
            shutil.copyfile(source, tmp)
            patch_samples(tmp, layout, audio.samples, audio.subtype, spans)
            _check_patched(tmp, audio, spans)
        else:
            sf.write(tmp, audio.samples, audio.sample_rate, format=audio.format, subtype=audio.subtype, endian=audio.endian)
            copy_tags(source, tmp)


def _check_patched(path, audio: Audio, spans) -> None:
    """Read the patched spans back: a header we misread must fail loudly, never write wrong samples."""
    with sf.SoundFile(path) as f:
        for start, end in spans:
            f.seek(start)
            back = f.read(end - start, dtype=str(audio.samples.dtype), always_2d=True)
            if not np.array_equal(back, audio.samples[start:end]):
                raise AudioError(f"patching samples {start}..{end} in place did not read back; nothing was written")


def write_atomic(audio: Audio, path: str | os.PathLike) -> None:
    """Write in the file's own format; a killed run never leaves a half-written file."""
    with atomic_target(path) as tmp:
        sf.write(tmp, audio.samples, audio.sample_rate, format=audio.format, subtype=audio.subtype, endian=audio.endian)


def copy_atomic(source: str | os.PathLike, path: str | os.PathLike) -> None:
    with atomic_target(path, mode_of=source) as tmp:
        shutil.copy2(source, tmp)


def _named_like_audio(root: str | os.PathLike) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith("."))


def find_audio_files(root: str | os.PathLike) -> list[Path]:
    """Audio files below ``root`` (recursive, sorted, hidden files skipped)."""
    return [p for p in _named_like_audio(root) if p.is_file()]


def find_audio_lookalikes(root: str | os.PathLike) -> dict[Path, str]:
    """What is named like audio below ``root`` but is no file (broken links, folders), with why it is left out."""
    found = {}
    for p in _named_like_audio(root):
        if p.is_symlink() and not p.exists():
            found[p] = f"broken symbolic link (to {os.readlink(p)})"
        elif p.is_dir():
            found[p] = "a folder named like an audio file (the files inside it are processed on their own)"
        elif not p.is_file():
            found[p] = "not a regular file"
    return found


def remove_stale_temporaries(root: str | os.PathLike, owned: Collection[str] | None = None) -> list[Path]:
    """Delete the temporary files a killed run left below ``root``; returns them.  With ``owned``
    (paths below ``root``), only the temporaries of those files: those of the others may belong to
    another process writing into the same tree (a shard of the same batch)."""
    stale = [p for p in Path(root).rglob(f".*{TEMP_SUFFIX}") if p.is_file()]
    if owned is not None:
        stale = [p for p in stale if _temporary_of(p).relative_to(Path(root)).as_posix() in owned]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def _temporary_of(temporary: Path) -> Path:
    """The file an ``atomic_target`` temporary (``.NAME.RANDOM.melrestore-tmp``) was to become."""
    return temporary.with_name(temporary.name[1 : -len(TEMP_SUFFIX)].rsplit(".", 1)[0])
