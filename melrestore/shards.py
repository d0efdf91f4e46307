"""One batch split over many machines: which files a shard repairs, where its number comes from
on a cluster scheduler, and the shards' reports merged into one.

A shard is the K-th of N parts of the batch's sorted file list, counted from 1.  The parts are
consecutive runs of that list of about equal total size (bytes, not file count), so the split
depends only on the inputs: every rerun of shard K/N gets the same files, and the N shards
together cover every file exactly once.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .config import digest
from .reports import CARRIED, REPORT_NAME, FileReport, journal_name, read_journal, report_name, summarise, write_report
from .wording import plural

# The environment a scheduler runs each task of an array in.
SLURM_TASK, SLURM_COUNT, SLURM_LAST = "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MAX"
KUBERNETES_INDEX = "JOB_COMPLETION_INDEX"  # 0-based; a Kubernetes Indexed Job does not say how many
COUNT_VARIABLE = "MELRESTORE_SHARD_COUNT"  # what --shard-count reads when it is not given

_TAG = r"(\d+)-of-(\d+)"  # Shard.tag's index and count
# A shard's report and journal names: their groups are its index and count.
SHARD_REPORT, SHARD_JOURNAL = report_name.regex(_TAG), journal_name.regex(_TAG)


class ShardError(ValueError):
    """A shard that cannot be: a malformed --shard, an index outside 1..N, a scheduler's array that
    does not map onto shards, or an output folder without shard reports."""


@dataclass(frozen=True)
class Shard:
    index: int  # 1..count
    count: int
    source: str = "--shard"  # where index and count came from, for messages

    def __post_init__(self):
        if self.count < 1:
            raise ShardError(f"{self.source}: the number of shards must be at least 1, not {self.count}")
        if not 1 <= self.index <= self.count:
            raise ShardError(f"{self.source}: there is no shard {self.index} of {self.count}: shards are counted from 1 to {self.count}")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def tag(self) -> str:
        """The shard in file names: ``2-of-4``."""
        return f"{self.index}-of-{self.count}"

    @staticmethod
    def inputs_digest(sources: list[tuple[Path, str]], lookalikes: list[FileReport] = ()) -> str:
        """A digest of what the split is made from (every name and size): shards that record the
        same one split the same inputs, so together they cover them all."""
        items = sorted([*((name, _size(source)) for source, name in sources), *((r.path, 0) for r in lookalikes)])
        return digest(items)

    def select(self, sources: list[tuple[Path, str]], lookalikes: list[FileReport] = ()):
        """This shard's part of a batch: its ``(source, name)`` pairs (as ``inputs.collect_inputs``
        gives them) and its entries for things named like audio that are no file."""
        sizes = {name: _size(source) for source, name in sources}
        names = sorted([*sizes, *(r.path for r in lookalikes)])
        mine = {name for name, part in zip(names, split([sizes.get(n, 0) for n in names], self.count)) if part == self.index - 1}
        return [s for s in sources if s[1] in mine], [r for r in lookalikes if r.path in mine]


def split(sizes: list[int], count: int) -> list[int]:
    """The part (0-based) of each item of a list, cut into ``count`` consecutive runs of about
    equal total size: an item goes to the part its middle byte falls in.  An empty file weighs
    one byte.  Integer arithmetic, so every machine computes the same split."""
    weights = [max(1, size) for size in sizes]
    total, before, parts = sum(weights), 0, []
    for weight in weights:
        parts.append(min(count - 1, (2 * before + weight) * count // (2 * total)))
        before += weight
    return parts


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # the file fails in whichever shard gets it, with the reason


def parse_shard(text: str) -> Shard:
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise ShardError(f"--shard {text!r}: give K/N, the K-th of N parts counted from 1 (e.g. --shard 1/4)")
    return Shard(int(match[1]), int(match[2]))


def _integer(environ, name: str) -> int:
    try:
        return int(environ[name])
    except ValueError:
        raise ShardError(f"{name}={environ[name]!r} is not a whole number") from None


def shard_from_environment(environ=os.environ, count: int | None = None) -> Shard | None:
    """The shard of a Slurm job array task or of a Kubernetes Indexed Job's pod; None outside both.

    Slurm: the task ID is the shard number (submit ``--array=1-N``), N the array's task count or
    ``count`` (needed to rerun some shards alone, ``--array=3,7``).  Kubernetes: the completion
    index counts from 0, so it is shard index + 1, and N is ``count`` (the Job's completions)."""
    if SLURM_TASK in environ:
        if count is None:
            if SLURM_COUNT not in environ:
                raise ShardError(f"{SLURM_TASK} is set but {SLURM_COUNT} is not: give --shard-count N or --shard K/N")
            count = _integer(environ, SLURM_COUNT)
            if SLURM_LAST in environ and _integer(environ, SLURM_LAST) != count:
                raise ShardError(f"the job array is not 1-{count} ({SLURM_TASK}={environ[SLURM_TASK]}, {SLURM_LAST}={environ[SLURM_LAST]}):"
                                 f" task IDs are shard numbers, so submit --array=1-N, and to rerun some shards alone"
                                 f" give the number of shards (--shard-count N or {COUNT_VARIABLE})")
        return Shard(_integer(environ, SLURM_TASK), count, source=f"{SLURM_TASK}={environ[SLURM_TASK]} of {count}")
    if KUBERNETES_INDEX in environ:
        if count is None:
            raise ShardError(f"{KUBERNETES_INDEX} is set but not the number of shards: give --shard-count N or set {COUNT_VARIABLE}")
        return Shard(_integer(environ, KUBERNETES_INDEX) + 1, count, source=f"{KUBERNETES_INDEX}={environ[KUBERNETES_INDEX]} of {count}")
    return None


def resolve_shard(option: str | None, count: int | None, environ=os.environ) -> Shard | None:
    """The shard a ``batch`` run repairs: ``--shard K/N`` if given, else the scheduler's; None for
    the whole batch (``--shard 1/1`` too, so that a job array that should not shard can say so)."""
    shard = parse_shard(option) if option else shard_from_environment(environ, count)
    if shard is None and count is not None:
        raise ShardError(f"--shard-count (or {COUNT_VARIABLE}) needs a scheduler's task number ({SLURM_TASK} or {KUBERNETES_INDEX});"
                         f" elsewhere give --shard K/N")
    return None if shard is None or shard.count == 1 else shard


# -- merging the shards' reports -----------------------------------------------------------------

def _shard_files(out_dir: Path, pattern: re.Pattern) -> dict[tuple[int, int], Path]:
    found = {}
    for path in out_dir.iterdir():
        match = pattern.fullmatch(path.name)
        if match:
            found[int(match[1]), int(match[2])] = path
    return found


def merge_reports(out_dir: Path) -> dict:
    """One report for the whole output tree from the shards' reports (and the journals of shards
    still running or killed), saved as ``OUT/melrestore-report.json``.  Its ``shards`` entry
    lists the shards that are complete, incomplete (why) and missing.  When reports of several
    shard counts lie in ``out_dir``, the count of the newest is merged and the others are named.

    The shards' entries are laid over those of the report already there (a whole run's, older
    than the shards, or an earlier merge), so that the files of shards not run yet keep their
    records; the orphans are those any of them names that no shard has processed since."""
    out_dir = Path(out_dir)
    reports, journals = _shard_files(out_dir, SHARD_REPORT), _shard_files(out_dir, SHARD_JOURNAL)
    count, base = _count_and_base(out_dir, reports, journals)
    # The shards of that count, by index: what each report and journal holds.
    runs = {i: report for i in range(1, count + 1) if (report := _load(reports.get((i, count)))) is not None}
    logs = {i: read_journal(journals[i, count]) for i in range(1, count + 1) if (i, count) in journals}
    entries, carried, orphaned = _merged_entries(out_dir, base, runs, logs, count)
    files = [FileReport.from_dict(entries[path]) for path in sorted(entries)]
    first = next(iter(runs.values()), {})
    # wall_seconds: the shards' times added up, so realtime_factor is per process; a journal holds
    # no time, so with one in the merge the audio it counts has none, and the speed is not known
    merged = summarise(files, first.get("input"), out_dir, first.get("pipeline"), sum(r["summary"]["wall_seconds"] for r in runs.values()))
    if logs:
        merged["summary"]["realtime_factor"] = None
    complete, incomplete, missing = _shard_states(runs, logs, count)
    merged["shards"] = {
        "count": count,
        "complete": complete,
        "incomplete": {str(k): why for k, why in incomplete.items()},
        "missing": missing,
        "other_counts": sorted({n for _, n in [*reports, *journals]} - {count}),
        "same_pipeline": all(r.get("pipeline") == first.get("pipeline") for r in runs.values()),
    }
    merged["files"] = merged.pop("files")  # the long list after the shards
    if orphaned:
        merged["orphaned"] = orphaned
    if carried:
        merged[CARRIED] = carried
    write_report(out_dir, merged)
    return merged


def _count_and_base(out_dir: Path, reports: dict, journals: dict) -> tuple[int, dict]:
    """The shard count to merge (the newest report's or journal's), and the report already in
    ``out_dir`` that the shards' entries are laid over (``{}`` if none)."""
    if not reports and not journals:
        raise ShardError(f"no shard reports in {out_dir} ({report_name('K-of-N')}): run `melrestore batch ... --shard K/N` into it first")
    newest = max({**journals, **reports}.items(), key=lambda item: (item[1].stat().st_mtime, item[1].name))
    existing = _load(out_dir / REPORT_NAME)
    if existing is not None and "shards" not in existing and (out_dir / REPORT_NAME).stat().st_mtime > newest[1].stat().st_mtime:
        raise ShardError(f"{out_dir / REPORT_NAME} is a whole run's report, newer than the shards' reports: it already "
                         "describes the tree, and merging the older shards' would replace it")
    return newest[0][1], existing or {}


def _merged_entries(out_dir: Path, base: dict, runs: dict[int, dict], logs: dict[int, dict], count: int):
    """The entries of the merged report by path, the entries it carries on (a list) and the orphans
    (a sorted list): ``base``'s, with each shard's report (``runs``) and then its journal (``logs``,
    newer) laid over them in the order of the shards."""
    entries = {f["path"]: f for f in base.get("files", [])}
    carried = {f["path"]: f for f in base.get(CARRIED, [])}
    orphaned, handled = set(base.get("orphaned", [])), set()
    for index in range(1, count + 1):
        if index in runs:
            report = runs[index]
            entries.update((f["path"], f) for f in report["files"])
            carried.update((f["path"], f) for f in report.get(CARRIED, []))
            orphaned.update(report.get("orphaned", []))
            handled.update(f["path"] for f in report["files"])
        if index in logs:
            entries.update(logs[index])
            handled.update(logs[index])
    orphaned = sorted(name for name in orphaned - handled if (out_dir / name).is_file())
    for name in orphaned:  # an earlier report's entry of an output whose input is gone now
        if name in entries:
            carried[name] = entries.pop(name)
    return entries, [carried[name] for name in sorted(carried.keys() - entries.keys())], orphaned


def _shard_states(runs: dict[int, dict], logs: dict[int, dict], count: int) -> tuple[list[int], dict[int, str], list[int]]:
    """The shards that are complete, those incomplete (with why) and those missing."""
    complete, incomplete, missing = [], {}, []
    for index in range(1, count + 1):
        if index not in runs and index not in logs:
            missing.append(index)
        elif index in logs:
            journal = journal_name(Shard(index, count).tag)
            incomplete[index] = f"running or killed: {plural(len(logs[index]), 'file')} done so far, per its journal {journal}"
        elif not runs[index].get("shard", {}).get("complete", False):
            incomplete[index] = "interrupted (Ctrl-C or SIGTERM): rerun it to finish"
        else:
            complete.append(index)
    # Shards that saw other inputs (files added, removed or changed between their runs) split them
    # otherwise: together they may miss files, so none of them counts as complete.
    if len({r["shard"].get("inputs") for r in runs.values() if "shard" in r} - {None}) > 1:
        for index in complete:
            incomplete[index] = "the shards saw different inputs (files added, removed or changed between their runs): rerun every shard"
        complete = []
    return complete, incomplete, missing


def _load(path: Path | None) -> dict | None:
    if path is None:
        return None
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        return report if isinstance(report, dict) and isinstance(report.get("files"), list) else None
    except (OSError, ValueError):
        return None  # unreadable: the shard counts as missing and is rerun


def describe_shards(merged: dict) -> list[str]:
    """What ``melrestore report`` says about the shards, one line each for those not complete."""
    shards = merged["shards"]
    count = shards["count"]
    lines = [f"{len(shards['complete'])} of {count} shards complete"]
    lines += [f"shard {k}/{count} INCOMPLETE: {why}" for k, why in shards["incomplete"].items()]
    lines += [f"shard {k}/{count} MISSING: not run (no report, no journal)" for k in shards["missing"]]
    if shards["other_counts"]:
        lines.append(f"note: reports of other shard counts ({', '.join(map(str, shards['other_counts']))}) were left out: "
                     f"the newest run used {count} shards")
    if not shards["same_pipeline"]:
        lines.append("WARNING: the shards ran with different pipeline options")
    return lines


def is_whole(merged: dict) -> bool:
    shards = merged["shards"]
    return len(shards["complete"]) == shards["count"]

