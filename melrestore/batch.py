"""Repairing one file, and whole folders of them with a report."""

from __future__ import annotations

import glob
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import __version__
from .audio import AUDIO_EXTENSIONS, AudioError, copy_atomic, find_audio_files, read, write_atomic
from .engine import Engine, GapResult
from .gaps import DetectionError
from .pipeline import PipelineOptions, build_engine

REPORT_NAME = "melrestore-report.json"


@dataclass
class FileReport:
    path: str
    status: str  # "repaired", "unchanged" (no gap: copied), "exists" (output kept), "detected", "failed"
    message: str = ""
    duration_s: float = 0.0
    sample_rate: int = 0
    channels: int = 0
    format: str = ""
    gaps: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for g in self.gaps if g["status"] == status)


def repair_file(engine: Engine, source: Path, target: Path | None, name: str | None = None, figures: Path | None = None) -> FileReport:
    """Detect and fill the gaps of ``source``; write to ``target`` (None: detect only).
    With ``figures``, save a before/after spectrogram of each repaired gap there.

    Never raises for a bad file: the reason goes into the report.
    """
    started = time.perf_counter()
    report = FileReport(path=name or str(source), status="failed")
    try:
        with engine.timed("decode"):
            audio = read(source)
        report.duration_s = round(audio.duration, 3)
        report.sample_rate, report.channels, report.format = audio.sample_rate, audio.channels, f"{audio.format}/{audio.subtype}"
        waveform = audio.as_float()
        gaps = engine.detect(waveform, audio.sample_rate, source)
        if target is None:
            report.status = "detected"
            plans = [engine.plan(g, audio.sample_rate) for g in gaps]
            report.gaps = [GapResult(g.start, g.end, g.reason, "skipped" if method == "skipped" else "found", why, method).to_dict(audio.sample_rate)
                           for g, (method, why) in zip(gaps, plans)]
            return report
        if not gaps:
            copy_atomic(source, target)
            report.status = "unchanged"
            return report
        fills, results = engine.repair(waveform, audio.sample_rate, gaps)
        for gap, fill in fills.items():
            audio.replace_span(gap.start, gap.end, fill)
        report.gaps = [r.to_dict(audio.sample_rate) for r in results]
        if fills:
            with engine.timed("write"):
                write_atomic(audio, target)
            if figures is not None:
                _save_figures(figures, report.path, waveform, audio.as_float(), audio.sample_rate, fills, report.gaps)
            report.status = "repaired"
            if audio.is_lossy:
                report.message = f"{audio.format} is lossy: re-encoding changes samples outside the gaps too"
        else:
            copy_atomic(source, target)
            report.status = "unchanged"
        if report.count("failed"):
            report.status = "failed"
            report.message = "; ".join(f"gap at {g['start_s']} s: {g['message']}" for g in report.gaps if g["status"] == "failed")
    except (AudioError, DetectionError, OSError) as exc:
        report.message = str(exc)
    except Exception as exc:  # a plugin's bug must not stop the batch
        report.message = f"{type(exc).__name__}: {exc}"
    finally:
        report.seconds = round(time.perf_counter() - started, 3)
    return report


def _save_figures(folder: Path, name: str, before, after, sample_rate: int, fills, results: list[dict]) -> None:
    from .figures import METHOD_NAMES, gap_spectrograms

    stem = name.replace("/", "__")
    methods = {r["start"]: r["method"] for r in results}
    for gap in sorted(fills, key=lambda g: g.start):
        at = gap.start / sample_rate
        how = METHOD_NAMES.get(methods.get(gap.start), methods.get(gap.start, ""))
        gap_spectrograms(
            {"before": before, "after": after}, sample_rate, gap.start, gap.end, folder / f"{stem}-{at:09.3f}s.png",
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


def _work(job: tuple) -> FileReport:
    return repair_file(_worker_engine, *job)


FIGURES_DIR = "melrestore-figures"


class InputError(ValueError):
    """The inputs named on the command line cannot be used as given."""


def _expand(pattern: str) -> list[Path]:
    """An existing path as is; otherwise a glob pattern's matches (``**`` included), sorted."""
    if Path(pattern).exists() or not glob.has_magic(pattern):
        return [Path(pattern)]
    matches = sorted(glob.glob(pattern, recursive=True))
    if not matches:
        raise InputError(f"{pattern!r} matches nothing")
    return [Path(m) for m in matches]


def collect_inputs(inputs, out_dir: Path | None = None) -> list[tuple[Path, str]]:
    """The audio files that ``inputs`` (files, folders searched recursively, glob patterns) name, each
    with its path below the output folder, as ``cp -r`` lays them out: a single folder's files keep
    their path below it; with several inputs each folder's files go below the folder's own name and
    each file keeps its name.  Files inside ``out_dir`` are left out, so a rerun never takes its own
    outputs as inputs."""
    paths = [path for item in ([inputs] if isinstance(inputs, (str, Path)) else inputs) for path in _expand(str(item))]
    if not paths:
        raise InputError("no input given")
    out = out_dir.resolve() if out_dir is not None else None
    sources: dict[str, Path] = {}
    for path in paths:
        if path.is_dir():
            if out is not None and path.resolve() == out:
                raise InputError(f"the output folder {out_dir} is also an input: melrestore never overwrites its input")
            prefix = "" if len(paths) == 1 else f"{path.resolve().name}/"
            found = [(f, prefix + f.relative_to(path).as_posix()) for f in find_audio_files(path)
                     if out is None or out not in f.resolve().parents]
        elif path.is_file():
            if path.suffix.lower() not in AUDIO_EXTENSIONS:
                raise InputError(f"{path} is not an audio file (melrestore reads {', '.join(AUDIO_EXTENSIONS)})")
            found = [(path, path.name)]
        else:
            raise InputError(f"{path} does not exist")
        for source, name in found:
            if name in sources and sources[name].resolve() != source.resolve():
                raise InputError(f"{sources[name]} and {source} would both be written to {name}: rename one or repair them separately")
            sources[name] = source
    return [(source, name) for name, source in sources.items()]


def plan_jobs(sources: list[tuple[Path, str]], out_dir: Path | None, overwrite: bool, figures: bool = False) -> tuple[list[tuple], list[FileReport]]:
    """Which of ``sources`` (from ``collect_inputs``) to process, and the ones whose output already exists."""
    jobs, kept = [], []
    for source, name in sources:
        if out_dir is None:
            jobs.append((source, None, name))
            continue
        target = out_dir / name
        if target.exists() and not overwrite:
            kept.append(FileReport(path=name, status="exists", message="output exists (use --overwrite)"))
        else:
            jobs.append((source, target, name, out_dir / FIGURES_DIR if figures else None))
    return jobs, kept


def run_batch(inputs, out_dir: Path | None, options: PipelineOptions, workers: int = 1, overwrite: bool = False,
              on_file=None, figures: bool = False) -> dict:
    """Process every audio file that ``inputs`` (a path, or a list of files, folders and glob patterns)
    names; returns (and, when writing, saves) the report."""
    started = time.perf_counter()
    jobs, reports = plan_jobs(collect_inputs(inputs, out_dir), out_dir, overwrite, figures)
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs) or 1))
    threads = max(1, (os.cpu_count() or 1) // workers) if workers > 1 else 0
    if workers == 1:
        _init_worker(options, threads)
        results = map(_work, jobs)
    else:
        pool = ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(options, threads))
        results = pool.map(_work, jobs)
    try:
        for report in results:
            reports.append(report)
            if on_file:
                on_file(report)
    finally:
        if workers > 1:
            pool.shutdown(cancel_futures=True)
    reports.sort(key=lambda r: r.path)
    report = summarise(reports, inputs, out_dir, options, time.perf_counter() - started)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = out_dir / f".{REPORT_NAME}.tmp"
        tmp.write_text(json.dumps(report, indent=2), encoding="utf-8")
        os.replace(tmp, out_dir / REPORT_NAME)
    return report


def summarise(reports: list[FileReport], inputs, out_dir, options: PipelineOptions, wall_s: float) -> dict:
    count = lambda status: sum(1 for r in reports if r.status == status)  # noqa: E731
    gap_count = lambda status: sum(r.count(status) for r in reports)  # noqa: E731
    audio_s = sum(r.duration_s for r in reports if r.status != "exists")
    return {
        "melrestore": __version__,
        "input": str(inputs) if isinstance(inputs, (str, Path)) else [str(p) for p in inputs],
        "output": str(out_dir) if out_dir else None,
        "pipeline": options.to_dict(),
        "summary": {
            "files": len(reports),
            "repaired": count("repaired"),
            "unchanged": count("unchanged"),
            "existing_kept": count("exists"),
            "failed": count("failed"),
            "gaps_found": sum(len(r.gaps) for r in reports),
            "gaps_repaired": gap_count("repaired"),
            "gaps_skipped": gap_count("skipped"),
            "gaps_failed": gap_count("failed"),
            "audio_seconds": round(audio_s, 3),
            "wall_seconds": round(wall_s, 3),
            "realtime_factor": round(audio_s / wall_s, 1) if wall_s > 0 else None,
        },
        "files": [asdict(r) for r in reports],
    }


def human_summary(report: dict) -> str:
    s = report["summary"]
    lines = [
        f"{s['files']} files: {s['repaired']} repaired, {s['unchanged']} without gaps, "
        f"{s['existing_kept']} already done, {s['failed']} failed",
        f"{s['gaps_found']} gaps: {s['gaps_repaired']} repaired, {s['gaps_skipped']} skipped, {s['gaps_failed']} failed",
        f"{s['audio_seconds']:.1f} s of audio in {s['wall_seconds']:.1f} s ({s['realtime_factor']}x real time)",
    ]
    for f in report["files"]:
        if f["status"] == "failed":
            lines.append(f"FAILED {f['path']}: {f['message']}")
        for g in f["gaps"]:
            if g["status"] == "skipped":
                lines.append(f"skipped {f['path']} gap at {g['start_s']} s: {g['message']}")
    return "\n".join(lines)
