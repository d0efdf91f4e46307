"""Repairing one file (:func:`repair_file`), and whole batches of them (:func:`run_batch`): which
files need work, and the worker processes that do it.  What the inputs name is for
:mod:`melrestore.inputs` to find, OUT's lock is :mod:`melrestore.output_lock`'s, and the report and
journal are :mod:`melrestore.reports`'."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from stat import S_ISREG

import numpy as np

from .atomic import TEMP_SUFFIX, SourceChangedError, copy_atomic, remove_stale_temporaries
from .audio import AudioError, AudioFile, quantise, write_converted, write_repaired
from .engine import Engine
from .gaps import DetectionError, Gap
from .inputs import UNREAD_FOLDER, collect_inputs
from .output_lock import claim_output
from .pipeline import PipelineOptions, build_engine
from .pool import Stopped, WorkerPool, describe_death, install_stop_handlers
from .reports import (CARRIED, DONE, FileReport, Journal, ReportError, earlier_records, journal_name,
                      orphaned_outputs, report_name, summarise, write_report)

FIGURES_DIR = "melrestore-figures"


def repair_file(engine: Engine, source: Path, target: Path | None, name: str | None = None, figures: Path | None = None,
                progress: Callable[[int, int], None] | None = None, output_format: tuple[str, str] | None = None,
                scanned: Callable[[float], None] | None = None) -> FileReport:
    """Detect and fill the gaps of ``source``; write to ``target`` (None: detect only), in the
    file's own format, or as ``output_format`` (``(format, subtype)``, libsndfile's) when given.
    With ``figures``, save a before/after spectrogram of each repaired gap there.
    ``scanned(fraction)`` follows the detection's reading of the file (the farthest sample read, as
    a share of the file); then ``progress(done, total)`` the gaps as ``Engine.repair`` fills them.

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
        gaps = engine.detect(_watched(waveform, scanned) if scanned else waveform, audio.sample_rate, source)
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
    return repair_file(_worker_engine, *job, **_shares(progress))


# The share of a file's progress that its scan for gaps takes; its gaps, the rest.
SCAN_SHARE = 0.2


def _shares(report) -> dict:
    """``repair_file``'s ``scanned`` and ``progress`` as ``report(fraction of the file done)``: the
    scan up to ``SCAN_SHARE``, then the gaps done."""
    return {"scanned": lambda fraction: report(SCAN_SHARE * fraction),
            "progress": lambda done, total: report(1.0 if done == total else SCAN_SHARE + (1 - SCAN_SHARE) * done / total)}


def _watched(waveform, scanned: Callable[[float], None]):
    """``waveform`` telling ``scanned`` the share of it read so far (the farthest sample: a detector
    reads the file in order, then goes back for the edges of what it found)."""
    farthest = 0

    def on_read(stop: int) -> None:
        nonlocal farthest
        if stop > farthest:
            farthest = stop
            scanned(farthest / max(1, waveform.shape[1]))

    return waveform.watched(on_read)


def _worker_died(job: tuple, exitcode: int | None) -> FileReport:
    source, target, name = job[:3]
    if target is not None:
        _remove_output(target)
    return FileReport(path=name, status="failed", message=describe_death(exitcode))


def plan_jobs(sources: list[tuple[Path, str]], out_dir: Path | None, overwrite: bool, figures: bool = False,
              lookalikes: list[FileReport] = (), pipeline: str | None = None,
              earlier: dict[str, dict] | None = None) -> tuple[list[tuple], list[FileReport]]:
    """Which of ``sources`` (from ``collect_inputs``) to process, and the entries of those that need
    no processing (``lookalikes`` among them).  ``earlier``: the entries of earlier runs into
    ``out_dir`` (``earlier_records(out_dir)[0]``); without them every file is processed.

    An output is kept only when an earlier run's report (or journal) says it was completed, from
    an input of the same size and modification time, with the same pipeline settings (``pipeline``,
    their fingerprint; a record without one, of an older version, is taken at its word), and the
    output is still the file that run wrote (same size and modification time); a file that failed,
    whose input, settings or output changed since, or whose output no record vouches for, is done again."""
    jobs, kept = [], list(lookalikes)
    if out_dir is None or overwrite or earlier is None:
        earlier = {}
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


def _run_jobs(jobs: list[tuple], engine: Engine, options: PipelineOptions, workers: int, on_progress=None):
    """Each job's report, in completion order; ``on_progress(name, fraction)`` while a file is repaired."""
    if workers == 1:
        for job in jobs:
            shares = _shares(lambda fraction, name=job[2]: on_progress(name, fraction)) if on_progress else {}
            yield repair_file(engine, *job, **shares)
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
              on_file=None, figures: bool = False, shard=None, on_progress=None, collected=None, on_start=None) -> dict:
    """Process every audio file that ``inputs`` (a path, or a list of files, folders and glob patterns)
    names; returns (and, when writing, saves) the report.  ``collected``: what ``collect_inputs``
    gave for them, when the caller has it already (a large archive takes seconds to list).

    ``on_start(files, jobs)`` is called once OUT is held and the work planned, before any file is
    done: how many files the run covers (the shard's, when sharded) and how many of them it
    processes (the rest kept from earlier runs).  ``on_file(report)`` is called as each file is
    done; before that, while it is repaired, ``on_progress(name, fraction)`` with the share of it
    done: its scan for gaps up to ``SCAN_SHARE``, then its gaps (``name``: its path in the report).

    With ``shard`` (a ``melrestore.shards.Shard``), only that shard's files, with the shard's own
    report and journal; other shards may write into the same ``out_dir`` at the same time.

    The report lists every file of the output tree, including those kept from earlier runs.
    Ctrl-C (KeyboardInterrupt) and SIGTERM (``Stopped``) stop the workers, save the report of
    what is done (its ``interrupted``: by which, and the files ``not_done``) and are raised again.
    ``report["report_error"]`` says why the report could not be saved.
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
        journal = Journal(out_dir / journal_name(tag)) if out_dir is not None else None
        interrupted = None
        restore_signals = install_stop_handlers()
        try:
            if on_start:
                on_start(len(sources), len(jobs))
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
        report = summarise(reports, inputs, out_dir, options.to_dict(), time.perf_counter() - started)
        if orphaned and not unread:  # with a folder unread, their inputs may be there still: none is named
            report["orphaned"] = list(orphaned)
        if any(orphaned.values()):
            report[CARRIED] = [entry for entry in orphaned.values() if entry is not None]
        if interrupted is not None:  # and what it left undone, for the rerun to do
            done = {r.path for r in reports}
            report["interrupted"] = {"by": "Ctrl-C" if isinstance(interrupted, KeyboardInterrupt) else "SIGTERM",
                                     "not_done": [job[2] for job in jobs if job[2] not in done]}
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
