"""How melrestore never leaves a half-written file.

Every file is written under a temporary name beside its place (``.NAME.`` + mkstemp's random part
+ :data:`TEMP_SUFFIX`) and renamed over it only once it is complete: a reader sees the old file or
the new one, never part of one.  A file written from an input by name (a byte copy, its tags) is
renamed into place only if the input is still the file that was read (:func:`check_unchanged`).
A run killed mid-write leaves its temporary behind; the next run into the same folder removes it
(:func:`remove_stale_temporaries`), as ``repair`` removes the scratch folders of killed repairs
(:class:`ScratchFolder`).

Light to import (no numpy or soundfile): the container, audio and report writers all build on it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Collection
from pathlib import Path

# Every temporary file melrestore writes ends so; a later run removes the ones a killed run left.
TEMP_SUFFIX = ".melrestore-tmp"
# What a file name may hold (bytes) so that ``.NAME.`` + mkstemp's 8 random characters + TEMP_SUFFIX
# still fit in the 255 bytes of a file name.
_NAME_ROOM = 255 - 2 - 8 - len(TEMP_SUFFIX)
SCRATCH_PREFIX = ".melrestore-"
_SCRATCH_NAME = re.compile(re.escape(SCRATCH_PREFIX) + r"[a-z0-9_]{8}")  # mkdtemp's random part


class SourceChangedError(Exception):
    """The file an output was written from by name changed meanwhile: the output is not renamed into place."""


def temporary_prefix(name: str) -> str:
    """How the temporaries of file ``name`` start: ``.NAME.``; a name too long for that is cut and
    a digest of the whole name added, so that the temporaries of two long names stay apart."""
    if len(os.fsencode(name)) <= _NAME_ROOM:
        return f".{name}."
    digest = hashlib.sha1(os.fsencode(name)).hexdigest()[:16]
    cut = name
    while len(os.fsencode(cut)) > _NAME_ROOM - 1 - len(digest):
        cut = cut[:-1]
    return f".{cut}~{digest}."


@contextlib.contextmanager
def replaced_atomically(path: Path, before_rename=None):
    """Yield a temporary path beside ``path`` (``temporary_prefix``, mkstemp's random part,
    ``TEMP_SUFFIX``); when the block succeeds, call ``before_rename(tmp)`` if given, and rename the
    temporary over ``path``.  The temporary never stays, whatever happens."""
    fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(path.name), suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        if before_rename is not None:
            before_rename(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_target(path: str | os.PathLike, mode_of: str | os.PathLike | None = None,
                  source: str | os.PathLike | None = None, source_stat: os.stat_result | None = None):
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds.

    The file gets ``mode_of``'s permission bits, or without it the usual ones (0666 less the
    umask), never mkstemp's 0600.  With ``source_stat`` (``source``'s ``os.stat`` from when it was
    read), the rename is made only if ``source`` is still the same file, unchanged
    (:func:`check_unchanged`): what was written from it by name is then of the samples read."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def finish(tmp: str) -> None:
        os.chmod(tmp, os.stat(mode_of).st_mode & 0o7777 if mode_of is not None else _default_mode())
        if source_stat is not None:
            check_unchanged(source, source_stat)

    with replaced_atomically(path, finish) as tmp:
        yield tmp


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """``path`` holds ``text`` (UTF-8) whole, or is as it was."""
    with atomic_target(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def check_unchanged(path: str | os.PathLike, stat: os.stat_result) -> None:
    """Raise :class:`SourceChangedError` unless ``path`` is still the file ``stat`` describes: the
    same file (device and inode), size and modification time.  An input replaced (``mv``, a sync
    tool), cut short or written to while it was repaired fails instead of giving an output that mixes two files."""
    try:
        now = os.stat(path)
    except OSError:
        now = None
    if now is None or _identity(now) != _identity(stat):
        raise SourceChangedError(f"{path} changed while it was being repaired: run again")


def _identity(stat: os.stat_result) -> tuple:
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def copy_atomic(source: str | os.PathLike, path: str | os.PathLike, source_stat: os.stat_result | None = None) -> None:
    """``source`` copied to ``path`` with its times and mode, atomically; with ``source_stat``, only
    if ``source`` is still that file (:func:`check_unchanged`)."""
    with atomic_target(path, mode_of=source, source=source, source_stat=source_stat) as tmp:
        shutil.copy2(source, tmp)


def remove_stale_temporaries(root: str | os.PathLike, owned: Collection[str] | None = None) -> list[Path]:
    """Delete the temporary files a killed run left below ``root``; returns them.  With ``owned``
    (paths below ``root``), only the temporaries of those files: those of the others may belong to
    another process writing into the same tree (a shard of the same batch).  A ``ScratchFolder``
    is not entered: a running ``repair`` may be writing there, and it cleans its own."""
    stale = []
    for folder, folders, files in os.walk(root):
        folders[:] = [f for f in folders if not _SCRATCH_NAME.fullmatch(f)]
        stale += [p for p in (Path(folder, f) for f in files if f.startswith(".") and f.endswith(TEMP_SUFFIX)) if p.is_file()]
    if owned is not None:
        prefixes = {Path(root, name).with_name(temporary_prefix(Path(name).name)) for name in owned}
        stale = [p for p in stale if _prefix_of(p) in prefixes]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def _prefix_of(temporary: Path) -> Path:
    """An ``atomic_target`` temporary (``PREFIX`` + mkstemp's random part + TEMP_SUFFIX) without its
    random part and suffix: the ``temporary_prefix`` of the file it was to become, in its folder.
    A temporary of a temporary (tags joined onto a file being written) is the outer one's."""
    prefix = temporary.name[: -len(TEMP_SUFFIX)].rsplit(".", 1)[0] + "."
    outer = prefix[1:-1]
    if outer.startswith(".") and outer.endswith(TEMP_SUFFIX):
        return _prefix_of(temporary.with_name(outer))
    return temporary.with_name(prefix)


class ScratchFolder:
    """A new hidden folder ``.melrestore-XXXXXXXX`` in ``parent`` for one run's files, removed on
    leaving the ``with`` block.  The run holds a shared flock on it, so a folder nobody holds (a
    killed run's) is provably stale: those in ``parent`` are removed first."""

    def __init__(self, parent: str | os.PathLike):
        remove_stale_scratch_folders(parent)
        while True:
            self.path = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=parent))
            self._handle = os.open(self.path, os.O_RDONLY)
            with contextlib.suppress(OSError):  # no locks on this file system: nothing there is taken for stale either
                fcntl.flock(self._handle, fcntl.LOCK_SH)
            with contextlib.suppress(FileNotFoundError):
                if os.path.samestat(os.fstat(self._handle), os.stat(self.path)):
                    break
            os.close(self._handle)  # removed by another run in the instant before it was locked

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._handle)


def remove_stale_scratch_folders(parent: str | os.PathLike) -> list[Path]:
    """Remove the ``ScratchFolder``s in ``parent`` that no run holds; returns them.  Only those that
    hold nothing but what ``repair`` writes there (``repaired.*`` and temporaries)."""
    removed = []
    for folder in sorted(Path(parent).glob(SCRATCH_PREFIX + "*")):
        if not _SCRATCH_NAME.fullmatch(folder.name) or folder.is_symlink() or not folder.is_dir():
            continue
        try:
            handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # fails while its run holds it
            inside = list(folder.iterdir())
            if all(p.is_file() and not p.is_symlink() and (p.name.startswith("repaired.") or p.name.endswith(TEMP_SUFFIX))
                   for p in inside):
                for p in inside:
                    p.unlink()
                folder.rmdir()
                removed.append(folder)
        except OSError:
            pass
        finally:
            os.close(handle)
    return removed
