"""What a batch says it did: each file's entry (:class:`FileReport`), the report and the journal
it writes into OUT, what earlier runs' records say, and the summary printed at the end."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import __version__
from .atomic import write_text_atomically
from .wording import plural


@dataclass(frozen=True)
class RecordName:
    """How a run's files of one kind in OUT are named: ``STEM`` + ``SUFFIX`` for a whole batch,
    ``STEM.TAG`` + ``SUFFIX`` for one shard of it (``melrestore-report.2-of-4.json``)."""

    stem: str
    suffix: str

    def __call__(self, shard_tag: str | None = None) -> str:
        return self.stem + ("" if shard_tag is None else f".{shard_tag}") + self.suffix

    @property
    def glob(self) -> str:
        """A glob pattern for the whole batch's and every shard's."""
        return f"{self.stem}*{self.suffix}"

    def regex(self, tag: str) -> re.Pattern:
        """A regular expression for the shards' names, their tag matching the regular expression
        ``tag`` (whose groups it keeps)."""
        return re.compile(re.escape(f"{self.stem}.") + tag + re.escape(self.suffix))


report_name = RecordName("melrestore-report", ".json")
# Each finished file's entry, appended as it finishes, so a killed run's work is known to the next one.
journal_name = RecordName(".melrestore-journal", ".jsonl")
REPORT_NAME, JOURNAL_NAME = report_name(), journal_name()
DONE = ("repaired", "unchanged")  # statuses whose output is complete
# A report's entries of earlier runs for outputs whose input it did not see (orphaned, or below a
# folder it could not read), carried on so that a later run that sees the input again can keep them.
CARRIED = "carried_entries"


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


class Journal:
    """The journal of a run: each finished file's entry, appended and synced to disk as it finishes."""

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


def earlier_records(out_dir: Path) -> tuple[dict[str, dict], set[str]]:
    """The entries of earlier runs into ``out_dir`` by path, and the names their reports call
    orphaned, from its reports (the whole batch's and each shard's) and the journals of runs that
    were killed, read oldest first, so that a newer record of a file replaces an older one."""
    records = [p for pattern in (report_name.glob, journal_name.glob) for p in out_dir.glob(pattern)]
    entries, orphaned = {}, set()
    for path in sorted(records, key=_age):
        if path.suffix == journal_name.suffix:
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


def write_report(out_dir: Path, report: dict, name: str = REPORT_NAME) -> None:
    """Atomically; raises ReportError saying why it could not."""
    path = out_dir / name
    try:
        write_text_atomically(path, json.dumps(report, indent=2))
    except OSError as exc:
        raise ReportError(f"cannot write the report {path}: {exc.strerror or exc}") from None


def summarise(reports: list[FileReport], inputs, out_dir, pipeline: dict | None, wall_s: float) -> dict:
    """The report of ``reports``: ``inputs`` as the batch was given them (a path or a list of them;
    None where not known), ``pipeline`` its settings (``PipelineOptions.to_dict()``)."""
    return {
        "melrestore": __version__,
        "input": None if inputs is None else str(inputs) if isinstance(inputs, (str, Path)) else [str(p) for p in inputs],
        "output": str(out_dir) if out_dir else None,
        "pipeline": pipeline,
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
        "realtime_factor": round(audio_s / wall_s, 1) if wall_s > 0 and audio_s > 0 else None,  # (none: nothing was read)
    }


def _first_few(names: list[str], shown: int = 3) -> str:
    return ", ".join(names[:shown]) + (", ..." if len(names) > shown else "")


def human_summary(report: dict) -> str:
    s = report["summary"]
    lines = [
        f"{plural(s['files'], 'file')}: {s['repaired']} repaired, {s['unchanged']} copied unchanged, {s['failed']} failed"
        + (f", {s['skipped']} skipped" if s["skipped"] else "")
        + (f" ({s['existing_kept']} done by an earlier run)" if s["existing_kept"] else ""),
        f"{plural(s['gaps_found'], 'gap')}: {s['gaps_repaired']} repaired, {s['gaps_skipped']} skipped, {s['gaps_failed']} failed",
        # (a file that failed, unread, counts no audio, but it did need work)
        "no file needed work: the outputs of an earlier run were kept" if s["existing_kept"] and not s["audio_seconds"] and not s["failed"]
        else f"{s['audio_seconds']:.1f} s of audio"  # and how fast, when known (a shard's journal holds no times)
        + (f" in {s['wall_seconds']:.1f} s ({s['realtime_factor']}x real time)" if s["realtime_factor"] is not None else ""),
    ]
    orphaned = report.get("orphaned", [])
    if orphaned:
        lines.append(f"{plural(len(orphaned), 'output')} of earlier runs with no input now (left as they are): {_first_few(orphaned)}")
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
