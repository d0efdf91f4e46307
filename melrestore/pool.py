"""Worker processes that survive each other's deaths and never outlive the main process.

Each worker runs one job at a time, so when one dies (killed by the kernel for memory, a
crash in native code) the pool knows which job it was: that job fails, a new worker takes its
place, and the others go on.  Workers ignore Ctrl-C (the main process decides what to do),
stop cleanly on SIGTERM (their temporary files are removed), and get SIGTERM when the main
process dies, however it dies.

A worker talks to the main process over its pipe: ("ready", None) or ("init-failed", why) once,
then for each job any number of ("progress", fraction) and one ("done", result).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from multiprocessing.connection import wait


# A worker sends a job's progress at most this often (seconds), so that a file of thousands of
# tiny gaps does not flood its pipe; the end of a job (fraction 1) is always sent.
PROGRESS_INTERVAL_S = 0.2


class WorkerStartError(Exception):
    """A worker could not get ready (its initializer raised)."""


def _stop_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # unwinds through finally blocks: temporaries get removed


def _die_with_parent(parent: int) -> None:
    """Get SIGTERM when the parent dies (Linux), or notice it within a second (elsewhere)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, signal.SIGTERM) == 0:  # PR_SET_PDEATHSIG
            if os.getppid() != parent:  # it died before we asked
                os.kill(os.getpid(), signal.SIGTERM)
            return
    except (OSError, AttributeError):
        pass

    def watch():
        while os.getppid() == parent:
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()


def _worker_main(conn, parent: int, initializer, initargs, work) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    _die_with_parent(parent)
    try:
        _serve(conn, initializer, initargs, work)
    except SystemExit as stop:  # SIGTERM: the finally blocks have removed the temporaries; skip the slow interpreter teardown
        os._exit(stop.code if isinstance(stop.code, int) else 1)


def _serve(conn, initializer, initargs, work) -> None:
    try:
        initializer(*initargs)
    except Exception as exc:
        conn.send(("init-failed", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", None))
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        conn.send(("done", work(job, _progress_sender(conn))))


def _progress_sender(conn):
    """``send(fraction)`` for one job: ("progress", fraction) on ``conn``, at most every PROGRESS_INTERVAL_S."""
    last = -math.inf

    def send(fraction: float) -> None:
        nonlocal last
        now = time.monotonic()
        if fraction < 1 and now - last < PROGRESS_INTERVAL_S:
            return
        last = now
        conn.send(("progress", fraction))

    return send


class _Worker:
    def __init__(self, context, initializer, initargs, work):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, os.getpid(), initializer, initargs, work), daemon=True)
        self.process.start()
        child.close()
        self.job = None
        self.ready = False


def describe_death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = "; the system may have run out of memory" if -exitcode == signal.SIGKILL else ""
        return f"the worker process died while repairing this file (killed by {name}{hint})"
    return f"the worker process died while repairing this file (exit status {exitcode})"


class WorkerPool:
    """``run(jobs)`` yields ``work(job, progress)`` for each job, in completion order, from ``size`` processes.

    A job whose worker dies yields ``on_death(job, exitcode)`` instead.  What the work passes to
    ``progress`` (a float, throttled to PROGRESS_INTERVAL_S) reaches ``on_progress(job, value)`` in
    this process, before the job's result.  Leaving the generator early (an exception, Ctrl-C,
    SIGTERM in the main process) stops every worker.
    """

    def __init__(self, size: int, initializer, initargs: tuple, work, on_death, fork: bool = False, on_progress=None):
        self.size = size
        self.initializer, self.initargs, self.work, self.on_death = initializer, initargs, work, on_death
        self.on_progress = on_progress
        # ``fork`` (on Linux; macOS's system libraries are not fork-safe): a copy of this process,
        # ready at once with every module it has loaded.  Otherwise a fresh interpreter per worker:
        # no threads or library state inherited, but each worker imports and loads everything again.
        self.context = multiprocessing.get_context("fork" if fork and sys.platform.startswith("linux") else "spawn")
        self.workers: list[_Worker] = []

    def _start(self) -> _Worker:
        worker = _Worker(self.context, self.initializer, self.initargs, self.work)
        self.workers.append(worker)
        return worker

    def run(self, jobs):
        queue = deque(jobs)
        try:
            for _ in range(min(self.size, len(queue))):
                self._start()
            while queue or any(w.job is not None for w in self.workers):
                for worker in self.workers:
                    if worker.ready and worker.job is None and queue:
                        worker.job = queue.popleft()
                        worker.conn.send(worker.job)
                wait([w.conn for w in self.workers] + [w.process.sentinel for w in self.workers])
                for worker in list(self.workers):
                    message = None
                    if worker.conn.poll():
                        try:
                            message = worker.conn.recv()
                        except (EOFError, OSError):
                            message = None
                    if message is not None:
                        kind, value = message
                        if kind == "init-failed":
                            raise WorkerStartError(value)
                        if kind == "ready":
                            worker.ready = True
                        elif kind == "progress":
                            if self.on_progress and worker.job is not None:
                                self.on_progress(worker.job, value)
                        else:
                            worker.job = None
                            yield value
                    elif not worker.process.is_alive():
                        worker.process.join()
                        self.workers.remove(worker)
                        if not worker.ready:
                            raise WorkerStartError(describe_death(worker.process.exitcode).replace("while repairing this file", "while starting"))
                        if worker.job is not None:
                            yield self.on_death(worker.job, worker.process.exitcode)
                        if queue:
                            self._start()
        finally:
            self.close()

    def close(self) -> None:
        """Stop all workers: ask, then SIGTERM (they remove their temporaries), then SIGKILL."""
        for worker in self.workers:
            try:
                worker.conn.send(None)
            except (OSError, ValueError):
                pass
            if worker.job is not None and worker.process.is_alive():
                worker.process.terminate()
        deadline = time.monotonic() + 5
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
        self.workers = []


def install_stop_handlers():
    """In the main process, make SIGTERM raise ``Stopped`` (so cleanup runs); returns a function restoring the old handler."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGTERM, _raise_stopped)
    return lambda: signal.signal(signal.SIGTERM, previous)


class Stopped(BaseException):
    """The main process got SIGTERM; ``exit_code`` is what it should exit with."""

    exit_code = 128 + signal.SIGTERM


def _raise_stopped(signum, frame):
    raise Stopped()

