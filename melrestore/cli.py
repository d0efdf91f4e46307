"""The ``melrestore`` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .config import ConfigError, load_config
from .registry import PluginError, get_registry


def _config(path) -> dict:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


@click.group()
@click.version_option(package_name="melrestore")
def cli():
    """Repair dropouts (gaps) in music recordings."""


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


@cli.command()
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False), required=True, help="TOML file from configs/.")
@click.option("--data", type=click.Path(exists=True, file_okay=False), required=True, help="Folder with the training audio.")
@click.option("--dataset", default="folder", show_default=True, help="Data set plugin: folder, cal500, ...")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default="runs/train", show_default=True, help="Where best.pt and last.pt go.")
@click.option("--resume", is_flag=True, help="Continue from OUT/last.pt.")
def train(config_path, data, dataset, out_dir, resume):
    """Train an inpainter (U-Net or FC) on random gaps in real music."""
    from .training import train as run_training

    config = _config(config_path)
    try:
        data_set = get_registry().build("datasets", dataset, root=data)
    except PluginError as exc:
        raise click.UsageError(str(exc)) from None
    log = lambda line: click.echo(line, err=True)  # noqa: E731
    metrics = run_training(config, data_set, Path(out_dir), resume=resume, log=log, progress_factory=_Progress)
    click.echo(json.dumps(metrics, indent=2))


def pipeline_options(command):
    """The flags that pick the plugins of a repair pipeline."""
    for decorator in reversed(
        [
            click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False), help="TOML file (see configs/)."),
            click.option("--inpainter", help="Inpainter plugin [default: unet-onnx]."),
            click.option("--vocoder", help="Vocoder plugin [default: griffin-lim]."),
            click.option("--detector", "detectors", multiple=True, help="Gap detector plugin; repeat for several [default: digital-silence, labels]."),
            click.option("--frontend", help="Mel front end for inpainters without their own settings [default: music-44k]."),
            click.option("--max-gap", "max_gap_seconds", type=float, help="Leave gaps longer than this many seconds alone [default: 3]."),
            click.option("--min-gap-ms", type=float, help="Shortest run of digital silence that counts as a gap [default: 2]."),
            click.option("--short-gap-ms", type=float, help="Fill gaps up to this long with LSAR on the waveform; 0 = never [default: 20]."),
            click.option("--long-gap-ms", type=float, help="From this length on, first try copying a matching stretch of the recording; 0 = never [default: 150]."),
        ]
    ):
        command = decorator(command)
    return command


def _pipeline(config_path, min_gap_ms=None, **flags):
    from .pipeline import PipelineOptions

    try:
        options = PipelineOptions.from_config(_config(config_path), **flags)
    except (TypeError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    if min_gap_ms is not None:
        options.options.setdefault("digital-silence", {})["min_ms"] = min_gap_ms
    return options


def _check_plugins(options) -> None:
    """Fail early, as a usage error, on a plugin name that does not exist."""
    registry = get_registry()
    wanted = [("inpainters", options.inpainter), ("vocoders", options.vocoder), ("mel_frontends", options.frontend)]
    wanted += [("gap_detectors", d) for d in options.detectors]
    if options.short_gap_ms > 0:
        wanted.append(("sample_repairers", options.short_gap_repairer))
    if options.long_gap_ms > 0:
        wanted.append(("sample_repairers", options.long_gap_repairer))
    try:
        for kind, name in wanted:
            registry.check(kind, name)
    except PluginError as exc:
        raise click.UsageError(str(exc)) from None


def _run_folder(in_dir, out_dir, options, workers, overwrite, figures=False):
    from tqdm import tqdm

    from .batch import FolderError, OutputError, check_folders, plan_jobs, run_batch
    from .pool import Stopped, WorkerStartError

    _check_plugins(options)
    if out_dir:
        try:
            check_folders(Path(in_dir), Path(out_dir))
        except FolderError as exc:
            raise click.UsageError(str(exc)) from None
    jobs, _ = plan_jobs(Path(in_dir), Path(out_dir) if out_dir else None, overwrite)
    with tqdm(total=len(jobs), unit="file", file=sys.stderr, disable=None) as bar:
        def on_file(report):
            bar.set_postfix_str(report.path[-40:], refresh=False)
            bar.update(1)

        try:
            report = run_batch(Path(in_dir), Path(out_dir) if out_dir else None, options, workers, overwrite, on_file, figures)
        except PluginError as exc:  # the engine is built before any file: a bad plugin option
            raise click.UsageError(str(exc)) from None
        except (OutputError, WorkerStartError) as exc:
            raise click.ClickException(str(exc)) from None
        except (KeyboardInterrupt, Stopped) as exc:
            bar.close()
            click.echo("interrupted: finished files are kept and in the report; run again to continue", err=True)
            sys.exit(130 if isinstance(exc, KeyboardInterrupt) else exc.exit_code)
    if report.get("report_error"):
        click.echo(f"Error: {report['report_error']}", err=True)
    return report


@cli.command()
@click.argument("in_dir", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Output folder (mirrors IN_DIR).")
@click.option("--workers", type=click.IntRange(min=0), default=0, help="Files repaired in parallel [default: 0 = one per CPU core].")
@click.option("--overwrite", is_flag=True, help="Redo files whose output already exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of a summary.")
@click.option("--figures", is_flag=True, help="Save a before/after spectrogram of each repaired gap in OUT/melrestore-figures/.")
@pipeline_options
def batch(in_dir, out_dir, workers, overwrite, as_json, figures, **flags):
    """Repair every audio file below IN_DIR into OUT (same names, format, rate, channels, depth).

    Files without gaps are copied unchanged; OUT/melrestore-report.json says what was done.
    Exit status: 0 all went well, 1 some file failed, 2 usage error, 130 Ctrl-C.
    """
    from .batch import REPORT_NAME, human_summary

    report = _run_folder(in_dir, out_dir, _pipeline(**flags), workers, overwrite, figures)
    click.echo(json.dumps(report, indent=2) if as_json else human_summary(report) + f"\nreport: {Path(out_dir) / REPORT_NAME}")
    sys.exit(1 if report["summary"]["failed"] or report.get("report_error") else 0)


@cli.command()
@click.argument("in_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pipeline_options
def detect(in_dir, as_json, **flags):
    """List the gaps found below IN_DIR; writes nothing."""
    report = _run_folder(in_dir, None, _pipeline(**flags), 1, False)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        for f in report["files"]:
            state = {"failed": f"FAILED: {f['message']}", "skipped": f"skipped: {f['message']}"}.get(f["status"], f"{len(f['gaps'])} gaps")
            click.echo(f"{f['path']}: {state}")
            for g in f["gaps"]:
                click.echo(f"  {g['start_s']:.3f} s  {g['duration_ms']:.1f} ms  {g['reason']}")
    sys.exit(1 if report["summary"]["failed"] else 0)


@cli.command()
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--out", "target", type=click.Path(dir_okay=False), required=True, help="Repaired file to write.")
@click.option("--overwrite", is_flag=True, help="Replace TARGET if it exists.")
@pipeline_options
def repair(source, target, overwrite, **flags):
    """Repair one file."""
    from .batch import repair_file
    from .pipeline import build_engine

    if Path(target).exists() and not overwrite:
        raise click.UsageError(f"{target} exists (use --overwrite)")
    if Path(target).resolve() == Path(source).resolve():
        raise click.UsageError("the output must differ from the input")
    options = _pipeline(**flags)
    _check_plugins(options)
    try:
        engine = build_engine(options)
    except PluginError as exc:
        raise click.ClickException(str(exc)) from None
    report = repair_file(engine, Path(source), Path(target))
    repaired = report.count("repaired")
    click.echo(f"{report.path}: {report.status}, {repaired} of {len(report.gaps)} gaps repaired" + (f" ({report.message})" if report.message else ""))
    for g in report.gaps:
        if g["status"] != "repaired":
            click.echo(f"  {g['status']} gap at {g['start_s']} s: {g['message']}")
    sys.exit(1 if report.status == "failed" else 0)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(as_json):
    """List installed plugins, where they come from and what they provide."""
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


@cli.command("export-onnx")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--out", type=click.Path(dir_okay=False), required=True, help="The .onnx file to write.")
@click.option("--example", type=click.Path(exists=True, dir_okay=False), help="Audio file for the real-input parity check.")
def export_onnx_command(checkpoint, out, example):
    """Export a trained checkpoint to ONNX and check it against PyTorch."""
    from .audio import read
    from .export import export_onnx, real_inputs_from
    from .networks import load_checkpoint

    real = None
    if example:
        audio = read(example)
        real = real_inputs_from(audio.as_float(), audio.sample_rate, load_checkpoint(checkpoint))
    report = export_onnx(Path(checkpoint), Path(out), real)
    for case, diff in report.items():
        click.echo(f"{case}: max abs difference {diff:.2e}")
    worst = max(report.values())
    click.echo(f"wrote {out} ({Path(out).stat().st_size / 1e6:.1f} MB); worst difference {worst:.2e}")
    if worst > 1e-4:
        raise click.ClickException("ONNX Runtime disagrees with PyTorch by more than 1e-4")


@cli.command()
@click.argument("in_dir", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Report folder.")
@click.option("--inpainter", "inpainters", multiple=True, help="Inpainter to score; repeat for several [default: unet-onnx]. Zeros, LSAR and interpolation are always included.")
@click.option("--gaps", default="50,100,200,400,1000,2000,3000", show_default=True, help="Gap lengths in ms, comma-separated.")
@click.option("--per-file", default=1, show_default=True, type=click.IntRange(min=1), help="Gaps of each length per file (as many as fit).")
@click.option("--seed", default=0, show_default=True, help="Seed for the gap positions.")
@click.option("--excerpt", "excerpt_s", type=float, help="Use only this many seconds from the middle of each file.")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False), help="TOML file for the pipeline.")
@click.option("--visqol/--no-visqol", default=True, show_default=True, help="Also score with ViSQOL v3 (slower).")
def evaluate(in_dir, out_dir, inpainters, gaps, per_file, seed, excerpt_s, config_path, visqol):
    """Punch gaps into clean recordings, repair them with each method, and score the fills."""
    from tqdm import tqdm

    from .evaluate import LABELS, format_table
    from .evaluate import evaluate as run_evaluation

    try:
        lengths = [int(g) for g in gaps.split(",") if g.strip()]
    except ValueError:
        raise click.UsageError(f"--gaps takes whole milliseconds separated by commas, not {gaps!r}") from None
    base = _pipeline(config_path)
    inpainters = list(inpainters) or [base.inpainter]
    for name in inpainters:
        _check_plugins(type(base)(**{**base.to_dict(), "inpainter": name}))
    with tqdm(unit="file", file=sys.stderr, disable=None) as bar:
        result = run_evaluation(Path(in_dir), Path(out_dir), inpainters, lengths, seed, excerpt_s, base, on_file=lambda _: bar.update(1), visqol=visqol, per_file=per_file)
    for metric in ("lsd_db", "snr_db", "log_mel_l1", "visqol_mos")[: 4 if visqol else 3]:
        click.echo(f"\n{LABELS[metric]}")
        click.echo(format_table(result, metric))
    for line in result["problems"]:
        click.echo(f"problem: {line}", err=True)
    click.echo(f"\nwrote {Path(out_dir) / 'index.html'}, metrics.json and metrics.csv")


@cli.command("check-plugin")
@click.argument("vocoder")
def check_plugin(vocoder):
    """Run the vocoder contract (melrestore.testing) against the vocoder named VOCODER."""
    from .testing import check_vocoder

    try:
        instance = get_registry().build("vocoders", vocoder)
    except PluginError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        for line in check_vocoder(instance):
            click.echo(f"ok    {line}")
    except AssertionError as exc:
        click.echo(f"FAIL  {exc}")
        sys.exit(1)
    click.echo(f"{vocoder} keeps the vocoder contract")
