"""The lock on OUT: one run at a time writes into an output folder (or the shards of one sharded run together)."""

from __future__ import annotations

import fcntl
import os
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path

from .atomic import TEMP_SUFFIX, remove_stale_temporaries
from .reports import REPORT_NAME, OutputError, report_name
from .shards import SHARD_REPORT


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
    refusal can say who holds OUT; a shard also stops while shards of another count hold OUT
    (``_refuse_other_shard_counts``).  The operating system drops the locks when their process
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
            _refuse_other_shard_counts(out_dir, report_file)
        lock_path = out_dir / _lock_name(report_file)
        lock = _lock(lock_path)
        if lock is not None:
            held.callback(os.close, lock)
            held.callback(_unlink, lock_path)  # before the release: a run that opened it meanwhile finds it gone
        remove_stale_temporaries(out_dir, owned)
        yield


def _lock_name(report_file: str) -> str:
    """The hidden lock file of the run that writes ``report_file`` (or, given a glob pattern, of those)."""
    return f".{report_file}.lock"


def _lock_folder(out_dir: Path, shared: bool) -> int | None:
    """An open descriptor of ``out_dir`` locked for a whole run (exclusive) or for a shard (shared
    with the other shards), or None where locks are not supported."""
    handle = os.open(out_dir, os.O_RDONLY)
    try:
        fcntl.flock(handle, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(handle)
        holders = [p.read_text(errors="replace") for p in sorted(out_dir.glob(_lock_name(report_name.glob)))]
        raise _busy(out_dir, holders, " (the shards of one sharded run may write there together, nothing else at the same time)") from None
    except OSError:  # no locks on this file system (some network mounts)
        os.close(handle)
        return None
    return handle


def _refuse_other_shard_counts(out_dir: Path, report_file: str) -> None:
    """A shard stops while shards of another count write into OUT (an array resubmitted with
    another N while the first still runs): both would repair the same files at once."""
    own = SHARD_REPORT.fullmatch(report_file)
    if own is None:
        return
    for path in out_dir.glob(_lock_name(report_name.glob)):
        other = SHARD_REPORT.fullmatch(path.name[1 : -len(".lock")])
        if other is None or other.group(2) == own.group(2):
            continue
        try:
            handle = os.open(path, os.O_RDONLY)
        except OSError:
            continue  # gone: that shard has ended
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)  # taken at once only if no shard holds it
        except BlockingIOError:
            owner = os.pread(handle, 20, 0).decode(errors="replace")
            raise _busy(out_dir, [owner], f" (a shard of {other.group(2)}, where this one is of {own.group(2)}: "
                                           "the shards of one run share a count)") from None
        except OSError:
            pass
        finally:
            os.close(handle)


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
