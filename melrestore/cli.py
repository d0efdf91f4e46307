"""The ``melrestore`` command line.

Start-up stays light (``--help`` and ``plugins`` answer at once): torch, the engine and the
other heavy modules are imported only inside the commands that run them.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import sys
from contextlib import ExitStack
from pathlib import Path

import click

from .config import ConfigError, load_config
from .formats import AUDIO_EXTENSIONS, FORMATS_BY_EXTENSION, OUTPUT_FORMATS
from .methods import describe
from .registry import ContractError, PluginError, get_registry
from .wording import plural

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _config(path) -> dict:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


class _Commands(click.Group):
    """The command group: Ctrl-C at any moment exits 130, as the README says, not click's "Aborted!"
    and 1 (which means a file failed): also while a command imports its modules or reads its inputs."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


@click.group(cls=_Commands, context_settings=CONTEXT)
@click.version_option(package_name="melrestore")
def cli():
    """Repair dropouts (gaps) in music recordings.

    \b
    Examples:
      melrestore batch *.flac -o fixed/        repair files, folders or globs into fixed/
      melrestore detect music/                 list the gaps it would repair, write nothing
      melrestore repair take3.wav -o take3-fixed.flac

    Every command takes -h/--help.
    """


def verbosity_options(command):
    """-q/--quiet and -v/--verbose, as the field's tools have them."""
    command = click.option("-v", "--verbose", is_flag=True, help="Also print every file and gap as it is done.")(command)
    return click.option("-q", "--quiet", is_flag=True, help="Print only errors; no progress bar, no summary.")(command)


class _Progress:
    """A tqdm bar that shows the training loss."""

    def __init__(self, total: int, initial: int):
        from tqdm import tqdm

        self.bar = tqdm(total=total, initial=initial, unit="step", file=sys.stderr, dynamic_ncols=True)

    def __call__(self, step: int, loss: float) -> None:
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def close(self) -> None:
        self.bar.close()


@cli.command(context_settings=CONTEXT)
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False), required=True, help="Training config (configs/unet-44k.toml and the like).")
@click.option("--data", type=click.Path(exists=True, file_okay=False), required=True, help="Folder with the training audio.")
@click.option("--dataset", default="folder", show_default=True, help="Data set plugin: folder, cal500, ...")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default="runs/train", show_default=True, help="Where best.pt and last.pt go.")
@click.option("--resume", is_flag=True, help="Continue from OUT/last.pt.")
def train(config_path, data, dataset, out_dir, resume):
    """Train an inpainter (U-Net or FC) on random gaps in real music.

    The folder data set splits the files by name: about 15 % are held out for validation, and
    training needs at least one file in each part, longer than the largest window (shorter ones
    and unreadable ones are skipped, each with a line saying why).

    Under torchrun it trains in several processes, on one machine or several (DistributedDataParallel:
    gloo on CPUs, NCCL on GPUs); the first process logs and saves.  --resume continues with any
    number of processes.  It uses CUDA when there is a GPU; the config's `workers` draw the
    batches in that many processes, and `max_minutes` stops a run in time (configs/unet-44k-gpu-2.toml).

    \b
    Examples:
      melrestore train --config configs/unet-44k.toml --data ~/music/train -o runs/unet
      melrestore train --config configs/unet-44k-gpu-2.toml --dataset prepared --data ~/melrestore-packed-2 -o runs/gpu
      torchrun --standalone --nproc-per-node 4 -m melrestore train --config configs/unet-44k.toml --data ~/music/train -o runs/unet
    """
    config = _config(config_path)
    if "training" not in config:
        raise click.UsageError(f"{config_path} is not a training config: it has no [training] table (see configs/unet-44k.toml)")
    from .training import read_config
    from .training import train as run_training

    try:
        _, train_config = read_config(config)
    except (TypeError, ValueError) as exc:
        raise click.UsageError(f"{config_path}: {exc}") from None
    earlier = [name for name in ("last.pt", "best.pt") if (Path(out_dir) / name).exists()]
    if earlier and not resume:
        raise click.UsageError(f"{out_dir} holds a run ({', '.join(earlier)}): --resume to continue it, or give another -o")
    # The folder's split by name follows the config's share; a plugin that takes none refuses it here.
    split = {"validation_percent": train_config.validation_percent} if "validation_percent" in config["training"] else {}
    try:
        data_set = get_registry().build("datasets", dataset, root=data, **split)
    except PluginError as exc:
        came = " (validation_percent comes from the config's [training] table)" if split and "validation_percent" in str(exc) else ""
        raise click.UsageError(f"{exc}{came}") from None
    n_train, n_validation = len(data_set.files("train")), len(data_set.files("validation"))
    found = f"{plural(n_train + n_validation, 'audio file')} found below {data}: {n_train} for training, {n_validation} for validation"
    if not n_train or not n_validation:
        how = " (split by file name)" if dataset == "folder" else ""
        problems = "".join(f"; {line}" for line in data_set.problems[:3])
        raise click.UsageError(f"too little data: {found}{how}; training needs at least one of each{problems}")
    from tqdm import tqdm

    log = lambda line: tqdm.write(line, file=sys.stderr)  # noqa: E731  (above the progress bar, not glued to it)
    try:
        metrics = run_training(config, data_set, Path(out_dir), resume=resume, log=log, progress_factory=_Progress)
    except ValueError as exc:  # e.g. no track longer than the largest window
        raise click.UsageError(f"cannot train: {exc} ({found})") from None
    if metrics is not None:  # under torchrun, the first process's
        click.echo(json.dumps(metrics, indent=2))


def pipeline_options(command=None, *, only=None):
    """The flags that pick the plugins of a repair pipeline (``only``: the names of those that apply):
    one per slot of ``melrestore.pipeline.SLOTS`` that has a flag, then the lengths."""
    from .pipeline import SLOTS, PipelineOptions

    default = {f.name: f"{f.default:g}" for f in dataclasses.fields(PipelineOptions) if isinstance(f.default, float)}
    flags = {"config": click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
                                    help="TOML file whose [pipeline] table sets these (see configs/pipeline.toml).")}
    for slot in SLOTS:
        if slot.flag:
            flags[slot.option] = click.option(slot.flag, slot.option, multiple=slot.many, help=f"{slot.help} [default: {slot.default_text}].")
    flags.update({
        "max_gap_seconds": click.option("--max-gap", "max_gap_seconds", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
                                        help=f"Leave gaps longer than this alone [default: {default['max_gap_seconds']}]."),
        "min_gap_ms": click.option("--min-gap-ms", type=click.FloatRange(min=0, min_open=True), metavar="MS", help="Shortest run of digital silence that counts as a gap [default: 2]."),
        "short_gap_ms": click.option("--short-gap-ms", type=click.FloatRange(min=0), metavar="MS", help=f"Fill gaps up to this long with LSAR on the waveform; 0 = never [default: {default['short_gap_ms']}]."),
        "long_gap_ms": click.option("--long-gap-ms", type=click.FloatRange(min=0), metavar="MS",
                                    help=f"From this length on, first try copying a matching stretch of the recording; 0 = never [default: {default['long_gap_ms']}]."),
    })

    def decorate(command):
        for name, decorator in reversed(flags.items()):
            if only is None or name in only:
                command = decorator(command)
        return command

    return decorate(command) if command else decorate


def _pipeline(config_path, min_gap_ms=None, **flags):
    from .pipeline import PipelineOptions

    try:
        options = PipelineOptions.from_config(_config(config_path), **flags)
    except (TypeError, ValueError) as exc:
        raise click.UsageError(f"{config_path}: {exc}" if config_path else str(exc)) from None
    if min_gap_ms is not None:
        options.options.setdefault("digital-silence", {})["min_ms"] = min_gap_ms
    return options


def _check_plugins(options) -> None:
    """Fail early, as a usage error, on a plugin name that does not exist or options that do not fit it."""
    try:
        options.check_plugins()
    except PluginError as exc:
        raise click.UsageError(str(exc)) from None


def _run(inputs, out_dir, options, workers, overwrite, figures=False, quiet=False, verbose=False, shard=None):
    """``run_batch`` with a progress bar (and, verbose, a line per file)."""
    from tqdm import tqdm

    from .batch import run_batch
    from .inputs import FolderError, InputError, collect_inputs
    from .pool import Stopped, WorkerStartError
    from .reports import OutputError

    _check_plugins(options)
    out = Path(out_dir) if out_dir else None
    try:
        collected = collect_inputs(inputs, out)  # listed once: run_batch takes the same list
        sources, entries = collected
    except (InputError, FolderError) as exc:
        raise click.UsageError(str(exc)) from None
    if not sources and not any(e.status == "failed" for e in entries):  # a folder that cannot be read, a broken link: reported as failed
        raise click.UsageError(f"no audio files in {', '.join(inputs)} (melrestore reads {', '.join(AUDIO_EXTENSIONS)})")
    with ExitStack() as held:  # the bar, from when run_batch says how many files it processes
        bar = None
        done, running = 0, {}  # files done; of each file under way, the share done (its scan, then its gaps)

        def on_start(files: int, jobs: int) -> None:
            nonlocal bar
            if shard is not None and not quiet:
                origin = "" if shard.source == "--shard" else f" ({shard.source})"
                click.echo(f"shard {shard}{origin}: {plural(files, 'file')} of {len(sources)}", err=True)
            bar = held.enter_context(tqdm(total=jobs, unit="file", file=sys.stderr, disable=True if quiet else None))

        def move() -> None:  # the bar to the files done and the shares of those under way
            position = round(done + sum(running.values(), 0.0), 2)
            bar.n = int(position) if position.is_integer() else position  # exactly its total at the end
            bar.update(0)  # redraws, as often as tqdm redraws

        def on_progress(name, fraction):
            running[name] = min(fraction, 0.99)  # whole once its report comes: after the gaps it is written
            move()

        def on_file(report):
            nonlocal done
            if verbose:
                bar.write(_file_line(report.path, report.status, report.message, report.gaps, options), file=sys.stderr)
            bar.set_postfix_str(report.path[-40:], refresh=False)
            done += 1
            running.pop(report.path, None)
            move()

        try:
            report = run_batch(inputs[0] if len(inputs) == 1 else list(inputs), out, options, workers, overwrite, on_file, figures, shard,
                               on_progress, collected, on_start)
        except PluginError as exc:  # the engine is built before any file: a bad plugin option
            raise click.UsageError(str(exc)) from None
        except OutputError as exc:
            raise click.ClickException(str(exc)) from None
        except WorkerStartError as exc:  # this process built the same pipeline before the workers started
            raise click.ClickException(f"a worker process could not start: {exc}; with --workers 1 this process, "
                                       "which could, repairs the files itself") from None
        except (KeyboardInterrupt, Stopped) as exc:
            started = bar is not None  # OUT held and the report to come: on_start was called
            held.close()  # the bar, if it is shown
            click.echo("interrupted: finished files are kept and in the report; run again to continue" if started
                       else "interrupted before any file was repaired: nothing was written", err=True)
            sys.exit(130 if isinstance(exc, KeyboardInterrupt) else exc.exit_code)
    if report.get("report_error"):
        click.echo(f"Error: {report['report_error']}", err=True)
    return report




def _file_line(path: str, status: str, message: str, gaps: list[dict], options) -> str:
    """One file and its gaps, as `detect` and `--verbose` print them."""
    if status == "failed" and not gaps:
        return f"{path}: FAILED: {message}"
    if status == "skipped":
        return f"{path}: skipped: {message}"
    count = plural(len(gaps), "gap") if gaps else "no gaps"
    head = count if status == "detected" else f"{status}, {count}"
    lines = [f"{path}: {head}" + (f" ({message})" if message else "")]
    for g in gaps:
        if g["status"] in ("skipped", "failed"):
            what = f"{'would be left alone' if status == 'detected' else g['status']}: {g['message']}"
        else:
            what = ("would be filled by " if g["status"] == "found" else "filled by ") + describe(g["method"], options,
                                                                                             g["status"] == "repaired")
        lines.append(f"  {g['start_s']:.3f} s  {g['duration_ms']:.1f} ms  {g['reason']}: {what}")
    return "\n".join(lines)


def _lossy_note(report: dict) -> str | None:
    from .audio import is_lossy

    lossy = [f["path"] for f in report["files"] if f["status"] == "repaired" and is_lossy(*f["format"].split("/"))]
    if not lossy:
        return None
    return (f"note: {plural(len(lossy), 'file')} re-encoded (OGG, MP3 and ADPCM are lossy): samples outside the gaps "
            f"changed too: {', '.join(lossy)}")


INPUTS = click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")


@cli.command(context_settings=CONTEXT)
@INPUTS
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Output folder: mirrors each INPUT's tree.")
@click.option("--workers", type=click.IntRange(min=0), default=0, help="Files repaired in parallel [default: 0 = one per CPU core].")
@click.option("--overwrite", is_flag=True, help="Redo files whose output already exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of a summary.")
@click.option("--figures", is_flag=True, help="Save a before/after spectrogram of each repaired gap in OUT/melrestore-figures/.")
@click.option("--shard", "shard_option", metavar="K/N",
              help="Repair only the K-th of N parts of the files, K from 1 to N [default: from a Slurm job array or Kubernetes Indexed Job, else all; 1/1 = all].")
@click.option("--shard-count", type=click.IntRange(min=1), metavar="N", envvar="MELRESTORE_SHARD_COUNT", show_envvar=True,
              help="N when the scheduler gives K: needed in a Kubernetes Indexed Job (K = JOB_COMPLETION_INDEX + 1), "
                   "optional in a Slurm array (K = SLURM_ARRAY_TASK_ID; N defaults to SLURM_ARRAY_TASK_COUNT).")
@verbosity_options
@pipeline_options
def batch(inputs, out_dir, workers, overwrite, as_json, figures, shard_option, shard_count, quiet, verbose, **flags):
    """Repair every audio file that INPUT names: files, folders (searched recursively) and glob
    patterns, several at once.  Outputs keep each file's name, format, rate, channels and depth.

    The output tree is laid out as `cp -r` would: a single folder's files keep their path below it
    in OUT; with several inputs, each folder gets its own subfolder of OUT and each file keeps its
    name.  Files without gaps are copied unchanged; OUT/melrestore-report.json says what was done.
    A rerun redoes only the files that failed or were not reached.  OUT must not be inside an
    input folder, nor contain one.

    Across machines, each shard (--shard K/N, or a task of a Slurm job array or Kubernetes Indexed
    Job) repairs its part into the same OUT and writes OUT/melrestore-report.K-of-N.json;
    `melrestore report OUT` then merges them.
    Exit status: 0 all went well, 1 some file failed, 2 usage error, 130 Ctrl-C, 143 SIGTERM.

    \b
    Examples:
      melrestore batch music/ -o fixed/
      melrestore batch *.flac live/ -o fixed/ --workers 2
      melrestore batch 'archive/**/*.wav' -o fixed/ --config configs/pipeline.toml
      melrestore batch archive/ -o fixed/ --shard 3/8
    """
    from .reports import human_summary, report_name
    from .shards import ShardError, resolve_shard

    try:
        shard = resolve_shard(shard_option, shard_count)
    except ShardError as exc:
        raise click.UsageError(str(exc)) from None
    report = _run(inputs, out_dir, _pipeline(**flags), workers, overwrite, figures, quiet, verbose, shard)
    failed = report["summary"]["failed"] or report.get("report_error")
    if as_json:
        click.echo(json.dumps(report, indent=2))
    elif quiet:
        for f in report["files"]:
            if f["status"] == "failed":
                click.echo(f"FAILED {f['path']}: {f['message']}", err=True)
    else:
        note = _lossy_note(report)
        click.echo(human_summary(report) + (f"\n{note}" if note else "") + f"\nreport: {Path(out_dir) / report_name(shard and shard.tag)}")
        if shard is not None:
            click.echo(f"when every shard is done: melrestore report {out_dir}")
    sys.exit(1 if failed else 0)


@cli.command(context_settings=CONTEXT)
@click.argument("out_dir", metavar="OUT", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the merged report as JSON instead of a summary.")
def report(out_dir, as_json):
    """Merge the reports of the shards of a batch (OUT/melrestore-report.K-of-N.json) into
    OUT/melrestore-report.json, and say which shards are missing or incomplete.

    It can run at any time, while shards still run too: a shard that is running or was killed
    counts with the files its journal lists.  Rerun a missing or incomplete shard with the same
    command line (`batch ... --shard K/N`); it keeps what is done.
    Exit status: 0 every shard complete and no file failed, 1 otherwise, 2 no shard reports.

    \b
    Example:
      melrestore report fixed/
    """
    from .reports import REPORT_NAME, ReportError, human_summary
    from .shards import ShardError, describe_shards, is_whole, merge_reports

    try:
        merged = merge_reports(Path(out_dir))
    except ShardError as exc:
        raise click.UsageError(str(exc)) from None
    except ReportError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(merged, indent=2))
    else:
        click.echo("\n".join([human_summary(merged), *describe_shards(merged), f"report: {Path(out_dir) / REPORT_NAME}"]))
    sys.exit(0 if is_whole(merged) and not merged["summary"]["failed"] else 1)


@cli.command(context_settings=CONTEXT)
@INPUTS
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@verbosity_options
@pipeline_options(only=("config", "inpainter", "detectors", "max_gap_seconds", "min_gap_ms", "short_gap_ms", "long_gap_ms"))
def detect(inputs, as_json, quiet, verbose, **flags):
    """List the gaps in the audio files INPUT names (files, folders, globs), and how `batch` would
    fill each one or why it would leave it alone; writes nothing.

    \b
    Examples:
      melrestore detect music/
      melrestore detect take1.wav take2.wav --min-gap-ms 5
    """
    options = _pipeline(**flags)
    report = _run(inputs, None, options, 1, False, quiet=quiet)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        sys.exit(1 if report["summary"]["failed"] else 0)
    for f in report["files"]:
        if quiet and f["status"] != "failed":
            continue
        click.echo(_file_line(f["path"], f["status"], f["message"], f["gaps"], options), err=quiet)
        _echo_warnings(f["warnings"], err=quiet)
    s = report["summary"]
    if not quiet:
        click.echo(f"{plural(s['gaps_found'], 'gap')} in {plural(s['files'], 'file')}"
                   + (f", {s['gaps_skipped']} would be left alone" if s["gaps_skipped"] else "")
                   + (f"; {s['failed']} could not be read" if s["failed"] else "")
                   + (f"; {s['skipped']} skipped" if s["skipped"] else ""))
    sys.exit(1 if s["failed"] else 0)


def _output_format(source: Path, target: str) -> tuple[str, str]:
    """The (format, subtype) to write ``target`` in: its extension's format, with the source's
    subtype where that format can hold it."""
    import soundfile as sf

    from .audio import sound_path

    extension = Path(target).suffix.lower()
    fmt = OUTPUT_FORMATS.get(extension)
    if fmt is None:
        raise click.UsageError(f"cannot tell the format of {target!r} from its extension: use {', '.join(OUTPUT_FORMATS)}")
    if fmt not in sf.available_formats():
        raise click.UsageError(f"this libsndfile cannot write {fmt} ({target})")
    try:
        info = sf.info(sound_path(source))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise click.ClickException(f"cannot read {source}: {exc}") from None
    if info.format in FORMATS_BY_EXTENSION[extension]:  # an RF64 or WAVEX file to .wav: kept as it is
        return info.format, info.subtype
    subtype = info.subtype if sf.check_format(fmt, info.subtype) else sf.default_subtype(fmt)
    try:  # before any work: can this format hold the file's rate and channels (MP3: 48 kHz at most)?
        sf.SoundFile(io.BytesIO(), "w", info.samplerate, info.channels, subtype, format=fmt).close()
    except (sf.LibsndfileError, RuntimeError) as exc:
        reason = getattr(exc, "error_string", str(exc)).removeprefix("Error : ")  # libsndfile's own words
        raise click.UsageError(f"cannot write {target} as {fmt}/{subtype} at {info.samplerate} Hz, "
                               f"{info.channels} channels: {reason}") from None
    return fmt, subtype


def _repair_target(source: Path, target: str, overwrite: bool) -> tuple[str, str]:
    """The (format, subtype) ``repair`` writes ``target`` in; a usage error where it cannot write there."""
    if target == "-":
        raise click.UsageError("-o - (standard output) is not supported: melrestore reads the whole file before it writes; give a file name")
    if Path(target).is_dir():
        raise click.UsageError(f"{target} is a folder: give a file name (for folders use `melrestore batch`)")
    folder = Path(target).parent
    if not folder.is_dir():
        raise click.UsageError(f"cannot write {target}: {folder} " + ("is not a folder" if folder.exists() else "does not exist"))
    fmt, subtype = _output_format(source, target)
    if Path(target).resolve() == source.resolve():
        raise click.UsageError("the output must differ from the input")
    if Path(target).exists() and not overwrite:
        raise click.UsageError(f"{target} exists (use --overwrite)")
    return fmt, subtype


def _echo_repaired(report, options, quiet: bool, verbose: bool) -> None:
    """What ``repair`` says of its file: a line (on stderr, and only on failure, when quiet), and
    the gaps it did not repair (every gap when verbose)."""
    line = f"{report.path}: {report.status}, {report.count('repaired')} of {plural(len(report.gaps), 'gap')} repaired" + (f" ({report.message})" if report.message else "")
    if quiet:
        if report.status == "failed":
            click.echo(line, err=True)
    elif verbose:
        click.echo(_file_line(report.path, report.status, report.message, report.gaps, options))
    else:
        click.echo(line)
        for g in report.gaps:
            if g["status"] != "repaired":
                click.echo(f"  {g['status']} gap at {g['start_s']} s: {g['message']}")
    if not quiet:
        _echo_warnings(report.warnings)


def _echo_warnings(warnings: list[str], err: bool = False) -> None:
    """A file's warnings (a truncated file, a name that is not its format), under its line."""
    for warning in warnings:
        click.echo(f"  warning: {warning}", err=err)


@cli.command(context_settings=CONTEXT)
@click.argument("source", metavar="FILE", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--out", "target", metavar="OUT_FILE", required=True,
              help="Repaired file to write; its extension picks the format (.wav, .w64, .flac, .aiff, .ogg, .mp3).")
@click.option("--overwrite", is_flag=True, help="Replace OUT_FILE if it exists.")
@verbosity_options
@pipeline_options
def repair(source, target, overwrite, quiet, verbose, **flags):
    """Repair one FILE into OUT_FILE.

    OUT_FILE is written in the format its extension names, with FILE's sample format where that
    format can hold it (a WAV of 24-bit samples becomes a 24-bit FLAC).  Writing to standard output
    (-o -) is refused: the whole file is read before anything is written.

    \b
    Examples:
      melrestore repair take3.wav -o take3-fixed.wav
      melrestore repair take3.wav -o take3-fixed.flac --inpainter fc-onnx
    """
    import soundfile as sf

    from .atomic import ScratchFolder
    from .audio import sound_path
    from .batch import repair_file
    from .pipeline import build_engine

    fmt, subtype = _repair_target(Path(source), target, overwrite)
    options = _pipeline(**flags)
    _check_plugins(options)
    try:
        engine = build_engine(options)
    except PluginError as exc:
        raise click.ClickException(str(exc)) from None
    original = sf.info(sound_path(source))
    converted = (fmt, subtype) != (original.format, original.subtype)
    bar, counting = None, None  # over the scan for gaps (per cent of the file), then over the gaps found

    def bar_of(what: str, **kwargs):
        nonlocal bar, counting
        if counting != what:
            from tqdm import tqdm

            if bar is not None:
                bar.close()
            bar, counting = tqdm(file=sys.stderr, disable=True if quiet else None, **kwargs), what
        return bar

    def on_scan(share: float) -> None:
        scan = bar_of("scan", total=100, desc="scanning", bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}]")
        scan.update(round(100 * share) - scan.n)

    def on_gaps(done: int, total: int) -> None:
        gaps = bar_of("gaps", total=total, unit="gap")
        gaps.update(done - gaps.n)

    try:
        scratch = ScratchFolder(Path(target).resolve().parent)  # (a killed repair's there are removed)
    except OSError as exc:
        raise click.ClickException(f"cannot write to {Path(target).parent}: {exc.strerror or exc}") from None
    with scratch as tmp:
        # Written as the extension asks, in one encoding from the decoded samples, into the scratch
        # folder, then renamed into place.  An OUT_FILE that exists (--overwrite) is replaced only by
        # a repaired file: a failed file gets no output, and that must not take the earlier one with it.
        written = tmp / f"repaired{Path(target).suffix}"
        try:
            report = repair_file(engine, Path(source), written, progress=on_gaps, output_format=(fmt, subtype) if converted else None,
                                 scanned=on_scan)
        finally:
            if bar is not None:
                bar.close()
        report.message = report.message.replace(str(written), str(target))  # the file as the user named it
        try:
            if written.exists():
                os.replace(written, target)
        except OSError as exc:
            raise click.ClickException(f"cannot write {target}: {exc.strerror or exc}") from None
    _echo_repaired(report, options, quiet, verbose)
    if converted and report.status != "failed" and not quiet:
        from .audio import holds_exactly, is_lossy

        if is_lossy(fmt, subtype):
            change = "were re-encoded lossily too"
        elif holds_exactly(subtype, original.subtype):
            change = "are the same (the new format holds them exactly)"
        else:
            change = f"were converted to {subtype} too"
        click.echo(f"wrote {target} as {fmt}/{subtype} (from {original.format}/{original.subtype}): the samples outside the gaps {change}; "
                   "of its tags, only the text ones libsndfile knows (title, artist, album, ...) were carried over")
    sys.exit(1 if report.status == "failed" else 0)


@cli.command(context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(as_json):
    """List installed plugins, where they come from and what they provide.

    \b
    Example:
      melrestore plugins --json
    """
    rows = get_registry().describe()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        source = f"{row['distribution']} {row['version']}" if row["distribution"] else "local"
        click.echo(f"{row['name']} ({source}, {row['module']})")
        if row["error"]:
            click.echo(f"  FAILED TO LOAD: {row['error']}")
        click.echo(f"  hooks: {', '.join(row['hooks']) or '-'}")
        for kind, names in row["provides"].items():
            click.echo(f"  {kind.replace('_', ' ')}: {', '.join(names)}")


@cli.command("export-onnx", context_settings=CONTEXT)
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--out", type=click.Path(dir_okay=False), required=True, help="The .onnx file to write.")
@click.option("--example", type=click.Path(exists=True, dir_okay=False), help="Audio file for the real-input parity check (from its start, the longest of the model's windows it fills).")
def export_onnx_command(checkpoint, out, example):
    """Export a CHECKPOINT written by `melrestore train` to ONNX and check it against PyTorch.

    The file is renamed into place only once ONNX Runtime and PyTorch agree within 1e-4: a failed
    check (exit status 1) leaves an earlier file as it was.

    \b
    Example:
      melrestore export-onnx runs/unet/best.pt -o unet.onnx --example examples/clean/mutilated-mime-a.flac
    """
    from .audio import AudioError, read
    from .export import ExampleTooShortError, ParityError, export_onnx, real_inputs_from
    from .states import ModelFileError, load_checkpoint

    if Path(out).resolve() == Path(checkpoint).resolve():
        raise click.UsageError(f"-o {out} is the checkpoint itself: writing the ONNX file there would lose its weights")
    nearest = next(folder for folder in Path(out).absolute().parents if folder.exists())  # export makes the rest
    if not nearest.is_dir():
        raise click.UsageError(f"cannot write {out}: {nearest} is not a folder")
    try:
        saved = load_checkpoint(checkpoint)
        saved.model()  # weights that do not fit their network fail here, before anything is written
    except ModelFileError as exc:
        raise click.UsageError(str(exc)) from None
    meta = saved.meta
    real = None
    if example:
        try:
            audio = read(example)
            real = real_inputs_from(audio.as_float(), audio.sample_rate, meta)
        except (AudioError, ExampleTooShortError) as exc:
            raise click.UsageError(f"--example {example}: {exc}") from None
        if real.shape[-1] < meta.window_frames[-1]:
            click.echo(f"--example {example} is shorter than the longest window ({meta.window_frames[-1]} frames): "
                       f"checked on its first {real.shape[-1]} frames, the longest window it fills")
    try:
        report = export_onnx(Path(checkpoint), Path(out), real)
    except ParityError as exc:
        for case, diff in exc.report.items():
            click.echo(f"{case}: max abs difference {diff:.2e}")
        raise click.ClickException(f"{exc}: {out} not written") from None
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror or exc}") from None
    for case, diff in report.items():
        click.echo(f"{case}: max abs difference {diff:.2e}")
    click.echo(f"wrote {out} ({Path(out).stat().st_size / 1e6:.1f} MB); worst difference {max(report.values()):.2e}")


def _positive_ms(ctx, param, value: str) -> list[int]:
    try:
        lengths = [int(g) for g in value.split(",") if g.strip()]
    except ValueError:
        raise click.BadParameter(f"whole milliseconds separated by commas, not {value!r}") from None
    if not lengths or min(lengths) <= 0:
        raise click.BadParameter(f"gap lengths must be positive, not {value!r}")
    return lengths


@cli.command(context_settings=CONTEXT)
@click.argument("in_dir", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Report folder (index.html, metrics.json, metrics.csv, audio).")
@click.option("--inpainter", "inpainters", multiple=True, help="Inpainter to score, each through the Mel pipeline alone; repeat for several [default: unet-onnx]. Always scored too: zeros, the waveform repairers (LSAR on the gaps up to 60 ms; similarity, always copying, on every gap), the true-Mel ceiling, interpolation, and what `batch` does with the first inpainter.")
@click.option("--gaps", "lengths", default="50,100,200,400,1000,2000,3000", show_default=True, callback=_positive_ms, help="Gap lengths in ms, comma-separated.")
@click.option("--per-file", default=1, show_default=True, type=click.IntRange(min=1), help="Gaps of each length per file (as many as fit).")
@click.option("--seed", default=0, show_default=True, help="Seed for the gap positions.")
@click.option("--excerpt", "excerpt_s", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS", help="Use only this many seconds from the middle of each file.")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False), help="TOML file for the pipeline.")
@click.option("--visqol/--no-visqol", default=True, show_default=True, help="Also score with ViSQOL v3 (slower).")
@click.option("--bits", type=click.Choice(["16", "24"]), help="Score as PCM recordings of this depth: excerpts rounded to it, every file written in it [default: 32-bit float].")
@click.option("--overwrite", is_flag=True, help="Replace the report of an earlier run in OUT: its files (metrics, page, audio, pictures) are removed first, nothing else there.")
@verbosity_options
def evaluate(in_dir, out_dir, inpainters, lengths, per_file, seed, excerpt_s, config_path, visqol, bits, overwrite, quiet, verbose):
    """Punch gaps into the clean recordings below IN_DIR, repair them with each method, and score
    the fills; OUT/index.html shows the tables, plots, spectrograms and audio.

    \b
    Examples:
      melrestore evaluate examples/clean -o eval --gaps 50,400,2000 --no-visqol
      melrestore evaluate held-out/ -o eval --inpainter unet-onnx --inpainter fc-onnx --excerpt 60
    """
    from tqdm import tqdm

    from .evaluate import (
        LABELS,
        EarlierEvaluationError,
        NothingReadError,
        check_report_folder,
        format_table,
    )
    from .evaluate import evaluate as run_evaluation
    from .inputs import UNREAD_FOLDER, FolderError, find_audio_files

    base = _pipeline(config_path)
    inpainters = list(inpainters) or [base.inpainter]
    for name in inpainters:
        _check_plugins(type(base)(**{**base.to_dict(), "inpainter": name}))
    unlisted = {}
    total = len(find_audio_files(in_dir, unlisted))
    if unlisted:  # scores of part of the folder would pass for the whole's
        folder, reason = next(iter(unlisted.items()))
        raise click.UsageError(f"{UNREAD_FOLDER} {folder}: {reason}")
    if not total:
        raise click.UsageError(f"no audio files below {in_dir}")
    try:
        check_report_folder(Path(out_dir), overwrite)
    except EarlierEvaluationError as exc:
        raise click.UsageError(str(exc)) from None
    with tqdm(total=total, unit="file", file=sys.stderr, disable=True if quiet else None) as bar:
        def on_file(name):
            if verbose:
                bar.write(f"scored {name}", file=sys.stderr)
            bar.update(1)

        try:
            result = run_evaluation(Path(in_dir), Path(out_dir), inpainters, lengths, seed, excerpt_s, base, on_file=on_file, visqol=visqol,
                                    per_file=per_file, bits=int(bits) if bits else None, overwrite=overwrite)
        except (FolderError, EarlierEvaluationError) as exc:
            raise click.UsageError(str(exc)) from None
        except NothingReadError as exc:  # as batch fails a file it cannot read: exit 1, each one's reason
            shown = 10
            for line in exc.reasons[:shown]:
                bar.write(line, file=sys.stderr)
            if len(exc.reasons) > shown:
                bar.write(f"... and {len(exc.reasons) - shown} more", file=sys.stderr)
            raise click.ClickException(f"{exc}: nothing written") from None
    if quiet:  # the problems are on the page; -q prints only errors
        return
    for line in result["problems"]:
        click.echo(f"problem: {line}", err=True)
    for metric in ("lsd_db", "snr_db", "log_mel_l1", "visqol_mos")[: 4 if visqol else 3]:
        click.echo(f"\n{LABELS[metric]}")
        click.echo(format_table(result, metric))
    click.echo(f"\nwrote {Path(out_dir) / 'index.html'}, metrics.json and metrics.csv")


@cli.command("check-plugin", context_settings=CONTEXT)
@click.argument("name")
@click.option("--data", type=click.Path(exists=True, file_okay=False), help="Folder to build a data set plugin on (data sets only).")
def check_plugin(name, data):
    """Check that the plugin object called NAME keeps the contract of its kind (detector, front
    end, inpainter, vocoder, sample repairer or data set; every kind it is, if several).

    It builds the object as a pipeline would and runs the matching check of melrestore.testing
    (check_vocoder, check_inpainter, ...) on real signals: a chord, mono and stereo, with gaps,
    at the shipped analysis settings.  A vocoder must give the right shape, finite values and an
    audible fill that meets the known samples without a jump, and a clear ValueError on bad input;
    see `melrestore.contracts` for every kind's contract.  Exit status 1 names the broken rule.

    \b
    Examples:
      melrestore check-plugin griffin-lim
      melrestore check-plugin lsar
      melrestore check-plugin folder --data ~/music/train
    """
    registry = get_registry()
    try:
        kinds = registry.find(name)
    except PluginError as exc:
        raise click.UsageError(str(exc)) from None
    from .testing import CHECKS

    failed = False
    for kind in kinds:
        options = {}
        if kind.key == "datasets":
            if data is None:
                raise click.UsageError(f"{name!r} is a {kind}: give --data DIR, a folder it can read, to check it on")
            options["root"] = data
        check = CHECKS[kind.key]
        click.echo(f"checking {kind} {name!r} against the {kind} contract (melrestore.testing.{check.__name__})")
        try:
            instance = registry.build(kind, name, **options)
            for line in check(instance):
                click.echo(f"ok    {line}")
        except (AssertionError, ContractError) as exc:  # a broken rule: the plugin's fault, not the user's
            click.echo(f"FAIL  {exc}")
            failed = True
            continue
        except PluginError as exc:  # options that do not fit, a factory that fails to start
            raise click.UsageError(str(exc)) from None
        except Exception as exc:  # a method that raises breaks the contract too
            click.echo(f"FAIL  {kind} {name!r} raised {type(exc).__name__}" + (f": {exc}" if str(exc) else ""))
            failed = True
            continue
        click.echo(f"{name} keeps the {kind} contract")
    sys.exit(1 if failed else 0)
