"""Repairing one file, and whole folders of them with a report."""

from __future__ import annotations

import fcntl
import glob
import json
import os
import tempfile
import time
from collections.abc import Callable, Collection
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from stat import S_ISDIR, S_ISREG

import numpy as np

from . import __version__
from .atomic import TEMP_SUFFIX, SourceChangedError, atomic_target, copy_atomic, remove_stale_temporaries
from .audio import AudioError, AudioFile, quantise, survey_audio, write_converted, write_repaired
from .engine import Engine
from .formats import AUDIO_EXTENSIONS
from .gaps import DetectionError, Gap
from .pipeline import PipelineOptions, build_engine
from .pool import Stopped, WorkerPool, describe_death, install_stop_handlers

REPORT_NAME = "melrestore-report.json"
# Each finished file's entry, appended as it finishes, so a killed run's work is known to the next one.
JOURNAL_NAME = ".melrestore-journal.jsonl"


def report_name(shard_tag: str | None = None) -> str:
    """The report of a whole batch, or of one shard of it (``melrestore-report.2-of-4.json``)."""
    return REPORT_NAME if shard_tag is None else f"melrestore-report.{shard_tag}.json"


def journal_name(shard_tag: str | None = None) -> str:
    return JOURNAL_NAME if shard_tag is None else f".melrestore-journal.{shard_tag}.jsonl"
DONE = ("repaired", "unchanged")  # statuses whose output is complete
# A report's entries of earlier runs for outputs whose input it did not see (orphaned, or below a
# folder it could not read), carried on so that a later run that sees the input again can keep them.
CARRIED = "carried_entries"
UNREAD_FOLDER = "cannot read the folder"  # how the failed entry of a folder that could not be listed begins


class FolderError(ValueError):
    """IN_DIR and OUT overlap."""


class OutputError(OSError):
    """OUT cannot be written."""


class ReportError(OSError):
    """The report could not be written."""


@dataclass
class FileReport:
    path: str
    # "repaired", "unchanged" (copied: no gap, or none of its gaps filled), "detected" (detect only), "failed" (no output),
    # "skipped" (named like audio but not a file, or audio in a format melrestore does not repair)
    status: str
    message: str = ""
    duration_s: float = 0.0
    sample_rate: int = 0
    channels: int = 0
    format: str = ""
    gaps: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    from_earlier_run: bool = False  # output kept from an earlier run; this entry is that run's
    source_size: int | None = None  # the input's size and modification time when it was processed:
    source_mtime_ns: int | None = None  # a rerun keeps the output only for the same input,
    pipeline: str | None = None  # and the same pipeline settings (PipelineOptions.fingerprint),
    output_size: int | None = None  # and only while the output is still the file this run wrote
    output_mtime_ns: int | None = None  # (another run's may have replaced it since)

    def count(self, status: str) -> int:
        return sum(1 for g in self.gaps if g["status"] == status)

    @classmethod
    def from_dict(cls, entry: dict) -> "FileReport":
        """An entry of a saved report or journal (keys this version does not know are left out)."""
        return cls(**{k: v for k, v in entry.items() if k in cls.__dataclass_fields__})


def repair_file(engine: Engine, source: Path, target: Path | None, name: str | None = None, figures: Path | None = None,
                progress: Callable[[int, int], None] | None = None, output_format: tuple[str, str] | None = None) -> FileReport:
    """Detect and fill the gaps of ``source``; write to ``target`` (None: detect only), in the
    file's own format, or as ``output_format`` (``(format, subtype)``, libsndfile's) when given.
    With ``figures``, save a before/after spectrogram of each repaired gap there.
    ``progress(done, total)`` follows the gaps as ``Engine.repair`` fills them.

    Never raises for a bad file: the reason goes into the report, and a failed file gets
    no output (an output left from an earlier run is removed), so a rerun redoes it.

    The file is read in pieces (detection in blocks, a window around each gap) and written by
    copying it with the fills patched in, so memory stays bounded whatever its length.
    """
    started = time.perf_counter()
    report = FileReport(path=name or str(source), status="failed")
    audio = None
    try:
        stat = os.stat(source)
        report.source_size, report.source_mtime_ns = stat.st_size, stat.st_mtime_ns
        with engine.timed("decode"):
            audio = AudioFile(source)
        report.duration_s = round(audio.duration, 3)
        report.sample_rate, report.channels, report.format = audio.sample_rate, audio.channels, f"{audio.format}/{audio.subtype}"
        report.warnings = audio.warnings
        waveform = audio.waveform
        gaps = engine.detect(waveform, audio.sample_rate, source)
        if audio.undecoded and gaps and target is not None:  # its repair would hold the decoded part alone
            raise AudioError(f"{audio.undecoded}: writing its repair would lose the rest, so it is left as it is; "
                             "split it into one file per stream first")
        if audio.undecoded:
            report.warnings.append(f"{audio.undecoded}: only that part is checked for gaps")
        if target is None:
            report.status = "detected"
            report.gaps = [engine.choose(g, audio.sample_rate).as_found().to_dict(audio.sample_rate) for g in gaps]
            return report
        if not gaps:
            _write_unchanged(audio, target, output_format, stat)
            report.status = "unchanged"
            return report
        fills, results = engine.repair(waveform, audio.sample_rate, gaps, progress)
        report.gaps = [r.to_dict(audio.sample_rate) for r in results]
        if report.count("failed"):
            failed = [g for g in report.gaps if g["status"] == "failed"]
            report.message = "; ".join(f"gap at {g['start_s']} s: {g['message']}" for g in failed) + " (no output written)"
            return report
        if fills:
            patches = [(gap.start, _patch(audio, gap, fill)) for gap, fill in fills.items()]
            with engine.timed("write"):
                if output_format is None:
                    write_repaired(audio, target, patches, source_stat=stat)
                else:
                    write_converted(audio, target, *output_format, patches, source_stat=stat)
            report.status = "repaired"
            if figures is not None:
                try:
                    _save_figures(figures, report.path, waveform, waveform.patched(patches), audio.sample_rate, fills, report.gaps)
                except Exception as exc:  # the repair stands; the figure is what is missing
                    report.warnings.append(f"no figure of its gaps: {_os_error_message(exc, source, None) if isinstance(exc, OSError) else exc}")
            if audio.is_lossy and output_format is None:  # (written as another format, repair says what changed)
                report.message = f"{report.format} is lossy: re-encoding changes samples outside the gaps too"
        else:
            _write_unchanged(audio, target, output_format, stat)
            report.status = "unchanged"
    except (AudioError, DetectionError, SourceChangedError) as exc:
        report.message = str(exc)
    except OSError as exc:
        report.message = _os_error_message(exc, source, target)
    except Exception as exc:  # a plugin's bug must not stop the batch
        report.message = f"{type(exc).__name__}: {exc}"
    finally:
        if audio is not None:
            audio.close()
        report.seconds = round(time.perf_counter() - started, 3)
        if report.status in DONE and target is not None:
            _record_output(report, target)
        if report.status == "failed" and target is not None:
            _remove_output(target)
            for g in report.gaps:  # a fill that never reached a file repaired nothing
                if g["status"] == "repaired":
                    g["status"], g["message"] = "failed", "filled, but the file was not written"
    return report


def _record_output(report: FileReport, target: Path) -> None:
    """The size and modification time of the output as it was moved into place."""
    try:
        stat = os.stat(target)
    except OSError:
        return
    report.output_size, report.output_mtime_ns = stat.st_size, stat.st_mtime_ns


def _write_unchanged(audio: AudioFile, target: Path, output_format: tuple[str, str] | None, stat: os.stat_result) -> None:
    """A file with nothing filled: copied as it is, or written as ``output_format`` (either only if
    it is still the file ``stat`` describes)."""
    if output_format is None:
        copy_atomic(audio.path, target, source_stat=stat)
    else:
        write_converted(audio, target, *output_format, source_stat=stat)


def _os_error_message(exc: OSError, source: Path, target: Path | None) -> str:
    """The system's reason, with the file it concerns named as the user named it: a temporary
    file being written beside the output stands for the output."""
    concerned = Path(exc.filename2 or exc.filename) if (exc.filename2 or exc.filename) is not None else None
    if not exc.strerror or concerned is None:
        return str(exc)
    absolute = Path(os.path.abspath(concerned))  # (mkstemp names its files absolutely, whatever OUT is)
    if target is not None:
        target = Path(target)
        on_the_way = {Path(os.path.abspath(folder)): folder for folder in target.parents}
        if absolute in on_the_way:  # a folder on the way to it
            why = "is a file, not a folder" if concerned.is_file() else exc.strerror
            return f"cannot write {target}: {on_the_way[absolute]} {why}"
        if absolute.parent == Path(os.path.abspath(target)).parent and (absolute.name == target.name or concerned.name.endswith(TEMP_SUFFIX)):
            return f"cannot write {target}: {exc.strerror}"
    if absolute == Path(os.path.abspath(source)):
        return f"cannot read {source}: {exc.strerror}"
    return str(exc)


def _patch(audio: AudioFile, gap: Gap, fill: np.ndarray) -> np.ndarray:
    """The stored samples that replace ``gap``'s: the fill at the file's bit depth, in the gap's
    channels; the other channels' own stored samples, untouched."""
    patch = quantise(fill, audio.subtype)
    if gap.channels is None:
        return patch
    kept = audio.read(gap.start, gap.end)
    kept[:, list(gap.channels)] = patch[:, list(gap.channels)]
    return kept


def _remove_output(target: Path) -> None:
    try:
        Path(target).unlink(missing_ok=True)
    except OSError:
        pass  # the report says the file failed either way


def _save_figures(folder: Path, name: str, before, after, sample_rate: int, fills, results: list[dict]) -> None:
    from .figures import METHOD_NAMES, gap_spectrograms

    stem = folder / name  # the output tree's folders, mirrored: a/b.wav and a__b.wav keep apart
    stem.parent.mkdir(parents=True, exist_ok=True)
    methods = {r["start"]: r["method"] for r in results}
    for gap in sorted(fills, key=lambda g: g.start):
        at = gap.start / sample_rate
        how = METHOD_NAMES.get(methods.get(gap.start), methods.get(gap.start, ""))
        gap_spectrograms(
            {"before": before, "after": after}, sample_rate, gap.start, gap.end, stem.with_name(f"{stem.name}-{at:09.3f}s.png"),
            title=f"{name}: gap at {at:.3f} s, {1000 * gap.length / sample_rate:.1f} ms, {how}",
        )


# -- folders -------------------------------------------------------------------

_worker_engine: Engine | None = None


def _init_worker(options: PipelineOptions, threads: int) -> None:
    """Each worker process builds its own engine, sharing the cores out between workers."""
    global _worker_engine
    if threads:
        import torch

        torch.set_num_threads(threads)
    _worker_engine = build_engine(options)


def _work(job: tuple, progress) -> FileReport:
    return repair_file(_worker_engine, *job, progress=_fraction(progress))


def _fraction(report):
    """``Engine.repair``'s ``progress(done, total)`` as ``report(fraction of the file done)``: its gaps done."""
    return lambda done, total: report(done / total)


def _worker_died(job: tuple, exitcode: int | None) -> FileReport:
    source, target, name = job[:3]
    if target is not None:
        _remove_output(target)
    return FileReport(path=name, status="failed", message=describe_death(exitcode))


FIGURES_DIR = "melrestore-figures"


def check_folders(in_dir: Path, out_dir: Path) -> None:
    """OUT must be neither IN_DIR, nor inside it, nor contain it."""
    source, target = Path(in_dir).resolve(), Path(out_dir).resolve()
    if source == target or source in target.parents:
        raise FolderError(f"OUT ({out_dir}) must not be IN_DIR or inside it: melrestore never writes into its input")
    if target in source.parents:
        raise FolderError(f"IN_DIR ({in_dir}) must not be inside OUT ({out_dir})")


@contextmanager
def claim_output(out_dir: Path, report_file: str = REPORT_NAME, owned: set[str] | None = None):
    """Hold OUT for one run (one shard's, when sharded) while it writes there: create it, check that
    it can be written, lock it, and remove the temporary files a killed run left (all of them, or
    with ``owned`` only those of these outputs: this shard's).

    Two locks (``fcntl.flock``) stop a second run into the same OUT, a run started twice or an
    overlapping scheduled job, before it touches anything: it would remove the first's
    temporaries mid-write and do its files again.  One is on OUT itself, held by a whole run
    alone and by the shards of a sharded run together; the other on a hidden file named after
    the run's report, which holds the process id, so that the same shard cannot run twice and a
    refusal can say who holds OUT.  The operating system drops the locks when their process
    dies, so a killed run never blocks the next; where the file system has no locks, none is
    taken."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        handle, check = tempfile.mkstemp(prefix=f".{report_file}.", suffix=TEMP_SUFFIX, dir=out_dir)
        os.close(handle)
        os.unlink(check)
    except OSError as exc:
        raise OutputError(f"cannot write to {out_dir}: {exc.strerror or exc}") from None
    with ExitStack() as held:  # released in reverse: the run's own lock, then OUT's
        folder = _lock_folder(out_dir, shared=owned is not None)
        if folder is not None:
            held.callback(os.close, folder)
        lock_path = out_dir / f".{report_file}.lock"
        lock = _lock(lock_path)
        if lock is not None:
            held.callback(os.close, lock)
            held.callback(_unlink, lock_path)  # before the release: a run that opened it meanwhile finds it gone
        remove_stale_temporaries(out_dir, owned)
        yield


def _lock_folder(out_dir: Path, shared: bool) -> int | None:
    """An open descriptor of ``out_dir`` locked for a whole run (exclusive) or for a shard (shared
    with the other shards), or None where locks are not supported."""
    handle = os.open(out_dir, os.O_RDONLY)
    try:
        fcntl.flock(handle, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(handle)
        holders = [p.read_text(errors="replace") for p in sorted(out_dir.glob(f".{REPORT_NAME.removesuffix('.json')}*.lock"))]
        raise _busy(out_dir, holders, " (the shards of one sharded run may write there together, nothing else at the same time)") from None
    except OSError:  # no locks on this file system (some network mounts)
        os.close(handle)
        return None
    return handle


def _busy(out_dir: Path, holders: list[str], why: str = "") -> OutputError:
    """The refusal of a run into ``out_dir`` while others (their process ids, as their lock files
    hold them) write there."""
    pids = [h.strip() for h in holders if h.strip()]
    who = f" (process {', '.join(pids)})" if pids else ""
    return OutputError(f"another melrestore batch{who} is writing into {out_dir}: wait for it to end, or choose another output folder{why}")


def _lock(path: Path) -> int | None:
    """An open descriptor of ``path`` holding an exclusive lock, or None where locks are not supported.

    A file this process may not write (a killed run's, of another user) is locked read-only, which
    flock allows, and then replaced by one of its own where the folder lets it."""
    while True:
        writable = True
        try:
            handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except PermissionError:
            try:
                handle, writable = os.open(path, os.O_RDONLY), False
            except OSError as exc:
                raise OutputError(f"cannot open the lock file {path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(handle, 20, 0).decode(errors="replace")
            os.close(handle)
            raise _busy(path.parent, [owner]) from None
        except OSError:  # no locks on this file system (some network mounts)
            os.close(handle)
            _unlink(path)
            return None
        try:
            current = os.stat(path).st_ino == os.fstat(handle).st_ino
        except FileNotFoundError:
            current = False  # removed by the run that held it as this one opened it
        if current and not writable and _unlink(path):
            current = False  # another user's stale lock file, removed: make this run's own
        if current:
            break
        os.close(handle)  # lock the file now at that path
    if writable:
        os.ftruncate(handle, 0)
        os.write(handle, str(os.getpid()).encode())
    return handle


def _unlink(path: Path) -> bool:
    """Remove ``path`` if allowed; whether it was."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        return False
    return True


def read_journal(path: Path) -> dict[str, dict]:
    """The entries a run appended to its journal, by path."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    entries = {}
    for line in lines:
        try:
            entry = json.loads(line)
            entries[entry["path"]] = entry
        except (ValueError, KeyError, TypeError):
            continue  # the line a killed run was writing
    return entries


def earlier_entries(out_dir: Path) -> dict[str, dict]:
    """The entries of earlier runs into ``out_dir``: its reports (the whole batch's and each shard's),
    then the journals of runs that were killed; a newer record of a file replaces an older one."""
    return earlier_records(out_dir)[0]


def earlier_records(out_dir: Path) -> tuple[dict[str, dict], set[str]]:
    """``earlier_entries``, and the names its reports call orphaned, from one reading of them."""
    records = [p for pattern in ("melrestore-report*.json", ".melrestore-journal*.jsonl") for p in out_dir.glob(pattern)]
    entries, orphaned = {}, set()
    for path in sorted(records, key=_age):
        if path.suffix == ".jsonl":
            entries.update(read_journal(path))
            continue
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
            entries.update(report_entries(report))
            orphaned.update(report.get("orphaned", []))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # not ours: the outputs only it vouches for are redone
    return entries, orphaned


def report_entries(report: dict) -> dict[str, dict]:
    """A saved report's entries by path: those it carried on, then its files' (which win)."""
    return {f["path"]: f for f in [*report.get(CARRIED, []), *report["files"]]}


def orphaned_outputs(out_dir: Path, names: Collection[str], records: tuple[dict[str, dict], set[str]]) -> dict[str, dict | None]:
    """The outputs in ``out_dir`` that earlier runs made or named orphaned (``records``, from
    ``earlier_records``) whose input is not among ``names`` now (deleted, renamed, not given this
    time, or below a folder that could not be read), each with the latest entry that records it
    (None where a report only names it)."""
    entries, named = records
    made = {**dict.fromkeys(named), **entries}
    return {name: made[name] for name in sorted(made) if name not in names and (out_dir / name).is_file()}


def _age(path: Path) -> tuple:
    try:
        return path.stat().st_mtime, path.name
    except OSError:
        return 0, path.name


class InputError(ValueError):
    """The inputs named on the command line cannot be used as given."""


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


def plan_jobs(sources: list[tuple[Path, str]], out_dir: Path | None, overwrite: bool, figures: bool = False,
              lookalikes: list[FileReport] = (), pipeline: str | None = None,
              earlier: dict[str, dict] | None = None) -> tuple[list[tuple], list[FileReport]]:
    """Which of ``sources`` (from ``collect_inputs``) to process, and the entries of those that need
    no processing (``lookalikes`` among them).  ``earlier``: ``earlier_entries(out_dir)``, when the
    caller has read them already.

    An output is kept only when an earlier run's report (or journal) says it was completed, from
    an input of the same size and modification time, with the same pipeline settings (``pipeline``,
    their fingerprint; a record without one, of an older version, is taken at its word), and the
    output is still the file that run wrote (same size and modification time); a file that failed,
    whose input, settings or output changed since, or whose output no record vouches for, is done again."""
    jobs, kept = [], list(lookalikes)
    if out_dir is None or overwrite:
        earlier = {}
    elif earlier is None:
        earlier = earlier_entries(out_dir)
    for source, name in sources:
        if out_dir is None:
            jobs.append((source, None, name))
            continue
        target = out_dir / name
        entry = earlier.get(name)
        if (entry is not None and entry.get("status") in DONE and _is_recorded(target, entry, "output")
                and _is_recorded(source, entry, "source") and entry.get("pipeline") in (None, pipeline)):
            kept.append(replace(FileReport.from_dict(entry), from_earlier_run=True))
        else:
            jobs.append((source, target, name, out_dir / FIGURES_DIR if figures else None))
    return jobs, kept


def _is_recorded(path: Path, entry: dict, role: str) -> bool:
    """Whether ``path`` is still the file (regular, of that size and modification time) an earlier
    run's ``entry`` records as its ``role`` (``source`` or ``output``: ``source_size``,
    ``source_mtime_ns``); a record without them, of an older version, is taken at its word."""
    try:
        stat = os.stat(path)
    except OSError:
        return False
    if not S_ISREG(stat.st_mode):
        return False
    return entry.get(f"{role}_size") is None or (stat.st_size, stat.st_mtime_ns) == (entry[f"{role}_size"], entry.get(f"{role}_mtime_ns"))


class _Journal:
    def __init__(self, path: Path):
        self.path = path
        try:
            self.file = open(self.path, "a", encoding="utf-8")
        except OSError as exc:  # a killed run's, of another user
            raise OutputError(f"cannot write the journal {path}: {exc.strerror or exc}") from None

    def add(self, report: FileReport) -> None:
        if self.file.closed:
            return
        try:
            self.file.write(json.dumps(asdict(report)) + "\n")
            self.file.flush()
            os.fsync(self.file.fileno())
        except OSError:  # a full disk: the batch goes on, and its files then fail with the reason
            self.close(remove=False)

    def close(self, remove: bool) -> None:
        """Close it; remove it if asked, or if it is empty (nothing to keep for the next run)."""
        try:
            self.file.close()
        except OSError:
            pass
        try:
            if remove or self.path.stat().st_size == 0:
                self.path.unlink(missing_ok=True)
        except OSError:
            pass


def _run_jobs(jobs: list[tuple], engine: Engine, options: PipelineOptions, workers: int, on_progress=None):
    """Each job's report, in completion order; ``on_progress(name, fraction)`` while a file is repaired."""
    if workers == 1:
        for job in jobs:
            progress = _fraction(lambda fraction: on_progress(job[2], fraction)) if on_progress else None
            yield repair_file(engine, *job, progress=progress)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    # Largest files first, so that no worker starts a long file while the others run out of work
    # (the report is sorted by name afterwards).
    jobs = sorted(jobs, key=lambda job: -_size(job[0]))
    # Forked workers skip the seconds of importing torch and loading the plugins again.  Only
    # single-threaded ones: GNU OpenMP (torch's thread pool) hangs in a forked child that runs
    # several threads once this process has used it.
    pool = WorkerPool(workers, _init_worker, (options, threads), _work, _worker_died, fork=threads == 1,
                      on_progress=(lambda job, fraction: on_progress(job[2], fraction)) if on_progress else None)
    yield from pool.run(jobs)


def _size(path: Path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0  # its worker reports why


def run_batch(inputs, out_dir: Path | None, options: PipelineOptions, workers: int = 1, overwrite: bool = False,
              on_file=None, figures: bool = False, shard=None, on_progress=None, collected=None) -> dict:
    """Process every audio file that ``inputs`` (a path, or a list of files, folders and glob patterns)
    names; returns (and, when writing, saves) the report.  ``collected``: what ``collect_inputs``
    gave for them, when the caller has it already (a large archive takes seconds to list).

    ``on_file(report)`` is called as each file is done; before that, while it is repaired,
    ``on_progress(name, fraction)`` with the share of its gaps done (``name``: its path in the report).

    With ``shard`` (a ``melrestore.shards.Shard``), only that shard's files, with the shard's own
    report and journal; other shards may write into the same ``out_dir`` at the same time.

    The report lists every file of the output tree, including those kept from earlier runs.
    Ctrl-C (KeyboardInterrupt) and SIGTERM (``Stopped``) stop the workers, save the report of
    what is done and are raised again.  ``report["report_error"]`` says why the report could not be saved.
    """
    started = time.perf_counter()
    sources, lookalikes = collected or collect_inputs(inputs, out_dir)  # raises InputError, FolderError
    # Orphans are outputs whose input none of the real sources is now (not a lookalike of the same
    # name, which gets no output); a shard sees all of the sources before it takes its part.
    all_names = {name for _, name in sources}
    unread = any(r.status == "failed" and r.message.startswith(UNREAD_FOLDER) for r in lookalikes)
    tag = None
    if shard is not None:
        inputs_digest = shard.inputs_digest(sources, lookalikes)  # before the split: what every shard must see alike
        sources, lookalikes = shard.select(sources, lookalikes)
        tag = shard.tag
    # A shard removes only its own temporaries: the others' may be in the middle of being written.
    owned = {name for _, name in sources} | {report_name(tag)} if shard is not None else None
    engine = build_engine(options)  # a bad plugin or option fails here, before any worker starts
    with claim_output(out_dir, report_name(tag), owned) if out_dir is not None else nullcontext():
        pipeline = options.fingerprint()
        records = earlier_records(out_dir) if out_dir is not None else ({}, set())
        orphaned = orphaned_outputs(out_dir, all_names, records) if out_dir is not None else {}
        jobs, reports = plan_jobs(sources, out_dir, overwrite, figures, lookalikes, pipeline, earlier=records[0])
        workers = max(1, min(workers or os.cpu_count() or 1, len(jobs) or 1))
        journal = _Journal(out_dir / journal_name(tag)) if out_dir is not None else None
        interrupted = None
        restore_signals = install_stop_handlers()
        try:
            for report in _run_jobs(jobs, engine, options, workers, on_progress):
                report.pipeline = pipeline
                if journal:
                    journal.add(report)
                reports.append(report)
                if on_file:
                    on_file(report)
        except (KeyboardInterrupt, Stopped) as exc:
            interrupted = exc
        except BaseException:
            if journal:
                journal.close(remove=False)  # keep what is done for the next run
            raise
        finally:
            restore_signals()
        reports.sort(key=lambda r: r.path)
        report = summarise(reports, inputs, out_dir, options, time.perf_counter() - started)
        if orphaned and not unread:  # with a folder unread, their inputs may be there still: none is named
            report["orphaned"] = list(orphaned)
        if any(orphaned.values()):
            report[CARRIED] = [entry for entry in orphaned.values() if entry is not None]
        if shard is not None:
            report["shard"] = {"index": shard.index, "count": shard.count, "complete": interrupted is None, "inputs": inputs_digest}
        if out_dir is not None:
            try:
                write_report(out_dir, report, report_name(tag))
                journal.close(remove=True)
            except ReportError as exc:
                report["report_error"] = str(exc)
                journal.close(remove=False)
            remove_stale_temporaries(out_dir, owned)  # a worker killed mid-write leaves one
        if interrupted is not None:
            raise interrupted
        return report


def write_report(out_dir: Path, report: dict, name: str = REPORT_NAME) -> None:
    """Atomically; raises ReportError saying why it could not."""
    path = out_dir / name
    try:
        with atomic_target(path) as tmp:
            Path(tmp).write_text(json.dumps(report, indent=2), encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot write the report {path}: {exc.strerror or exc}") from None


def summarise(reports: list[FileReport], inputs, out_dir, options: PipelineOptions, wall_s: float) -> dict:
    return {
        "melrestore": __version__,
        "input": str(inputs) if isinstance(inputs, (str, Path)) else [str(p) for p in inputs],
        "output": str(out_dir) if out_dir else None,
        "pipeline": options.to_dict(),
        "summary": summary_of(reports, wall_s),
        "files": [asdict(r) for r in reports],
    }


def summary_of(reports: list[FileReport], wall_s: float) -> dict:
    count = lambda status: sum(1 for r in reports if r.status == status)  # noqa: E731
    gap_count = lambda status: sum(r.count(status) for r in reports)  # noqa: E731
    audio_s = sum(r.duration_s for r in reports if not r.from_earlier_run)
    return {
        "files": len(reports),
        "repaired": count("repaired"),
        "unchanged": count("unchanged"),
        "existing_kept": sum(1 for r in reports if r.from_earlier_run),
        "failed": count("failed"),
        "skipped": count("skipped"),
        "gaps_found": sum(len(r.gaps) for r in reports),
        "gaps_repaired": gap_count("repaired"),
        "gaps_skipped": gap_count("skipped"),
        "gaps_failed": gap_count("failed"),
        "audio_seconds": round(audio_s, 3),
        "wall_seconds": round(wall_s, 3),
        "realtime_factor": round(audio_s / wall_s, 1) if wall_s > 0 else None,
    }


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _first_few(names: list[str], shown: int = 3) -> str:
    return ", ".join(names[:shown]) + (", ..." if len(names) > shown else "")


def human_summary(report: dict) -> str:
    s = report["summary"]
    lines = [
        f"{_counted(s['files'], 'file')}: {s['repaired']} repaired, {s['unchanged']} copied unchanged, {s['failed']} failed"
        + (f", {s['skipped']} skipped" if s["skipped"] else "")
        + (f" ({s['existing_kept']} done by an earlier run)" if s["existing_kept"] else ""),
        f"{_counted(s['gaps_found'], 'gap')}: {s['gaps_repaired']} repaired, {s['gaps_skipped']} skipped, {s['gaps_failed']} failed",
        # (a file that failed, unread, counts no audio, but it did need work)
        "no file needed work: the outputs of an earlier run were kept" if s["existing_kept"] and not s["audio_seconds"] and not s["failed"]
        else f"{s['audio_seconds']:.1f} s of audio"  # and how fast, when known (a shard's journal holds no times)
        + (f" in {s['wall_seconds']:.1f} s ({s['realtime_factor']}x real time)" if s["realtime_factor"] is not None else ""),
    ]
    orphaned = report.get("orphaned", [])
    if orphaned:
        lines.append(f"{_counted(len(orphaned), 'output')} of earlier runs with no input now (left as they are): {_first_few(orphaned)}")
    # Files skipped for one reason (an archive's thousands of .m4a files) are one line.
    skipped: dict[str, list[str]] = {}
    for f in report["files"]:
        if f["status"] == "skipped":
            skipped.setdefault(f["message"], []).append(f["path"])
    for message, paths in skipped.items():
        named = paths[0] if len(paths) == 1 else f"{len(paths)} files ({_first_few(paths)})"
        lines.append(f"skipped {named}: {message}")
    for f in report["files"]:
        if f["status"] == "failed":
            lines.append(f"FAILED {f['path']}: {f['message']}")
        for warning in f["warnings"]:
            lines.append(f"WARNING {f['path']}: {warning}")
        for g in f["gaps"]:
            if g["status"] == "skipped":
                lines.append(f"skipped {f['path']} gap at {g['start_s']} s: {g['message']}")
    if report.get("report_error"):
        lines.append(f"ERROR {report['report_error']}")
    return "\n".join(lines)
