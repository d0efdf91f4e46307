"""What a batch's inputs name: the audio files below folders, glob patterns and files, each with its
path in the output tree, and what is named like audio but left out (with why)."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from stat import S_ISDIR, S_ISREG

from .formats import AUDIO_EXTENSIONS, UNREAD_AUDIO_EXTENSIONS
from .reports import FileReport

UNREAD_FOLDER = "cannot read the folder"  # how the failed entry of a folder that could not be listed begins


class InputError(ValueError):
    """The inputs named on the command line cannot be used as given."""


class FolderError(ValueError):
    """An input folder and OUT overlap."""


def check_folders(in_dir: Path, out_dir: Path) -> None:
    """OUT must be neither the input folder ``in_dir``, nor inside it, nor contain it."""
    source, target = Path(in_dir).resolve(), Path(out_dir).resolve()
    if source == target or source in target.parents:
        raise FolderError(f"OUT ({out_dir}) must not be the input folder {in_dir} or inside it: melrestore never writes into its input")
    if target in source.parents:
        raise FolderError(f"the input folder {in_dir} must not be inside OUT ({out_dir})")


def collect_inputs(inputs, out_dir: Path | None = None) -> tuple[list[tuple[Path, str]], list[FileReport]]:
    """The audio files that ``inputs`` (files, folders searched recursively, glob patterns) name, each
    with its path below the output folder, as ``cp -r`` lays them out: a single folder's files keep
    their path below it; with several inputs each folder's files go below the folder's own name and
    each file keeps its name.  A folder input must not overlap ``out_dir`` (FolderError).  And the
    report entries of what is found but not processed: each thing named like audio that is no
    file, and a failed one for each folder that cannot be listed (named as the input when it is one)."""
    unlisted: dict[str, str] = {}  # the folders a glob could not list or enter
    paths, matched = [], set()
    for item in [inputs] if isinstance(inputs, (str, Path)) else inputs:
        expanded = _expand(str(item), unlisted)
        paths += expanded
        if expanded != [Path(item)]:
            matched.update(expanded)
    if not paths:
        raise InputError("no input given")
    sources: dict[str, Path] = {}
    kinds = {}
    for path in paths:
        try:
            kinds[path] = path.stat().st_mode
        except FileNotFoundError:
            raise InputError(f"{path} does not exist") from None
        except OSError as exc:  # a folder on the way that cannot be entered
            if path not in matched:
                raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
            unlisted.setdefault(str(path.parent), exc.strerror or str(exc))  # listed by the glob, not entered
    lookalikes = [_unread_folder(folder, why) for folder, why in unlisted.items()]
    for path, kind in kinds.items():
        if S_ISDIR(kind):
            if out_dir is not None:
                check_folders(path, out_dir)
            prefix = "" if len(paths) == 1 else f"{path.resolve().name}/"
            unreadable: dict[Path, str] = {}
            files, named_like_audio = survey_audio(path, unreadable)
            found = [(f, prefix + f.relative_to(path).as_posix()) for f in files]
            for folder, why in unreadable.items():
                below = folder.relative_to(path).as_posix()
                lookalikes.append(_unread_folder(prefix + below if below != "." else prefix.rstrip("/") or str(path), why))
            for thing, reason in named_like_audio.items():
                lookalikes.append(FileReport(path=prefix + thing.relative_to(path).as_posix(),
                                             status="failed" if not thing.exists() else "skipped", message=reason))
        elif S_ISREG(kind):
            if path.suffix.lower() not in AUDIO_EXTENSIONS:
                raise InputError(f"{path} is not an audio file (melrestore reads {', '.join(AUDIO_EXTENSIONS)})")
            if out_dir is not None and Path(out_dir).resolve() in path.resolve().parents:
                raise FolderError(f"{path} is inside OUT ({out_dir}): melrestore never writes into its input")
            found = [(path, path.name)]
        else:
            raise InputError(f"{path} is neither a file nor a folder")
        for source, name in found:
            if name in sources and sources[name].resolve() != source.resolve():
                raise InputError(f"{sources[name]} and {source} would both be written to {name}: rename one or repair them separately")
            sources[name] = source
    return [(source, name) for name, source in sources.items()], lookalikes


def _unread_folder(path: str, why: str) -> FileReport:
    """The failed entry of a folder that could not be listed or entered (``why``: the system's reason)."""
    return FileReport(path=path, status="failed", message=f"{UNREAD_FOLDER}: {why} (no file in it was checked)")


def _expand(pattern: str, unlisted: dict[str, str] | None = None) -> list[Path]:
    """An existing path as is; otherwise a glob pattern's matches (``**`` included), sorted (the
    folders it cannot list go into ``unlisted``, with the system's reason)."""
    if os.path.lexists(pattern) or not glob.has_magic(pattern):
        return [Path(pattern)]
    matches = sorted(m for m in _glob(pattern, unlisted=unlisted) if m)
    if not matches:
        raise InputError(f"{pattern!r} matches nothing")
    return [Path(m) for m in matches]


def _glob(pattern: str, root: str | None = None, unlisted: dict[str, str] | None = None) -> list[str]:
    """``glob.glob(pattern, recursive=True)`` (below the folder ``root``, joined to it, when given),
    except that ``**`` neither matches nor enters a linked folder, as a folder input's walk does not
    enter one: glob follows them, and a link to a folder above (``up -> ..``) made it run for ever.
    (pathlib's recurse_symlinks is Python 3.13's.)  The parts of the pattern around each ``**`` are
    globbed by glob itself, the rest of the pattern below each folder the ``**`` matches.  The
    folders ``**`` cannot list go into ``unlisted``."""
    parts = pattern.split("/")
    if "**" not in parts:
        if root is None:
            return glob.glob(pattern)
        if not pattern:  # after a "**/" that ends the pattern: folders only
            return [os.path.join(root, "")] if os.path.isdir(root or os.curdir) else []
        return [os.path.join(root, m) for m in glob.glob(pattern, root_dir=root)]
    at = parts.index("**")
    head = "/".join(parts[:at]) or ("/" if at else "")
    rest = "/".join(parts[at + 1 :]) if at + 1 < len(parts) else None
    # As glob does: a literal head is taken as it is (below a "**", if it exists); one with wildcards
    # in its last part matches folders only.
    if not glob.has_magic(head):
        heads = [head] if root is None or os.path.lexists(os.path.join(root, head) or os.curdir) else []
    else:
        heads = glob.glob(head, root_dir=root)
        if glob.has_magic(os.path.basename(head)):
            heads = [h for h in heads if os.path.isdir(os.path.join(root or "", h))]
    matches = []
    for top in heads:
        top = os.path.join(root, top) if root is not None else top
        # What "**" matches below top: nothing ("top/"), then, with more pattern to come, its
        # folders at every depth, and at the pattern's end everything below it.
        for below in ["", *_below(top, rest is not None, unlisted)]:
            found = os.path.join(top, below)
            matches += [found] if rest is None else _glob(rest, found, unlisted)
    return matches


def _below(folder: str, folders_only: bool, unlisted: dict[str, str] | None = None):
    """The names below ``folder`` as glob's ``**`` lists them (hidden ones left out), relative to it,
    but without linked folders: neither listed nor entered.  A folder it cannot list goes into
    ``unlisted``."""
    try:
        with os.scandir(folder or os.curdir) as listing:
            entries = list(listing)
    except OSError as exc:
        if unlisted is not None:
            unlisted[folder or os.curdir] = exc.strerror or str(exc)
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            real_folder = entry.is_dir(follow_symlinks=False)
            if not real_folder and (folders_only or entry.is_symlink() and entry.is_dir()):
                continue
        except OSError:
            continue
        yield entry.name
        if real_folder:
            yield from (os.path.join(entry.name, name) for name in _below(os.path.join(folder, entry.name), folders_only, unlisted))


def find_audio_files(root: str | os.PathLike, unlisted: dict[Path, str] | None = None) -> list[Path]:
    """Audio files below ``root`` (recursive, sorted, hidden files and folders skipped); the folders
    that cannot be listed go into ``unlisted``, with the system's reason (their files are not found)."""
    return [p for p in _named_like_audio(root, unlisted=unlisted) if _is_file_noting_unlisted(p, unlisted)]


def survey_audio(root: str | os.PathLike, unlisted: dict[Path, str] | None = None) -> tuple[list[Path], dict[Path, str]]:
    """``find_audio_files(root, unlisted)``, and from the same walk what is named like audio below
    ``root`` but is no file (broken links, folders, linked folders) or is audio in a format
    melrestore does not read (``song.m4a``), with why it is left out."""
    named = _named_like_audio(root, (*AUDIO_EXTENSIONS, *UNREAD_AUDIO_EXTENSIONS), unlisted)
    readable = [p for p in named if p.suffix.lower() in AUDIO_EXTENSIONS]
    files = [p for p in readable if _is_file_noting_unlisted(p, unlisted)]
    found = {p: f"{p.suffix.lower()} is not a format melrestore reads ({', '.join(AUDIO_EXTENSIONS)}): convert it "
                "to FLAC or WAV to have it checked for gaps"
             for p in named if p.suffix.lower() in UNREAD_AUDIO_EXTENSIONS and _is_file_noting_unlisted(p)}
    regular = set(files)
    for p in (p for p in readable if p not in regular):
        try:
            p.lstat()
        except OSError:  # in a folder that cannot be entered: reported as that folder
            continue
        if p.is_symlink() and not p.exists():
            found[p] = f"broken symbolic link (to {os.readlink(p)})"
        elif p.is_symlink() and p.is_dir():
            found[p] = "a linked folder named like an audio file (linked folders are not entered: the files inside it are not processed)"
        elif p.is_dir():
            found[p] = "a folder named like an audio file (the files inside it are processed on their own)"
        else:
            found[p] = "not a regular file"
    return files, dict(sorted(found.items()))


def _named_like_audio(root: str | os.PathLike, extensions=AUDIO_EXTENSIONS, unlisted: dict[Path, str] | None = None) -> list[Path]:
    """Everything below ``root`` named with one of ``extensions``, sorted; hidden files and folders (a
    leading dot: macOS's ``._song.wav``, Netatalk's ``.AppleDouble/song.wav``, a trash folder) left
    out, and linked folders not entered.  The folders that cannot be listed (``root`` included: no
    permission, removed meanwhile) go into ``unlisted``, with the system's reason."""
    def note(error: OSError) -> None:
        if unlisted is not None:
            unlisted[Path(error.filename if error.filename is not None else root)] = error.strerror or str(error)

    found = []
    for folder, folders, files in os.walk(root, onerror=note):
        folders[:] = [name for name in folders if not name.startswith(".")]
        found += [Path(folder) / name for name in folders + files
                  if not name.startswith(".") and Path(name).suffix.lower() in extensions]
    return sorted(found)


def _is_file_noting_unlisted(path: Path, unlisted: dict[Path, str] | None = None) -> bool:
    """``path.is_file()``; where its folder can be listed but not entered (read without execute
    permission), False, and the folder goes into ``unlisted`` with the system's reason."""
    try:
        return path.is_file()
    except OSError as exc:
        if unlisted is not None:
            unlisted.setdefault(path.parent, exc.strerror or str(exc))
        return False
