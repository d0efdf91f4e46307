"""`melrestore evaluate`: punch gaps into clean recordings, repair them with each method, score the fills.

Every method's repaired audio is written under ``REPORT_DIR/repaired/<method>/``
and the scores are computed from those files, so anyone can listen to them
and recompute the numbers.  ``melrestore.evaluation_page`` draws the page.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

from . import __version__
from .atomic import write_text_atomically
from .audio import Audio, AudioError, quantise, read, to_float, write_atomic
from .batch import repair_file
from .engine import Engine, Window
from .gaps import Gap
from .inputs import check_folders, find_audio_files
from .metrics import gap_metrics
from .pipeline import PipelineOptions, build_engine
from .registry import get_registry

DEFAULT_GAPS_MS = (50, 100, 200, 400, 1000, 2000, 3000)
METRICS = ("lsd_db", "snr_db", "log_mel_l1", "spectral_convergence", "visqol_mos")
LABELS = {
    "lsd_db": "log-spectral distance (dB, lower is better)",
    "snr_db": "SNR (dB, higher is better)",
    "log_mel_l1": "log-Mel L1 (lower is better)",
    "spectral_convergence": "spectral convergence (lower is better)",
    "visqol_mos": "ViSQOL MOS-LQO (higher is better)",
}
# metrics.csv: a row per method and gap (``_scores``), its header even where no gap fit
COLUMNS = ("file", "method", "gap_ms", "start", "end", "rate", *METRICS, "detected", "filled", "changed_outside")
TRUE_MEL = "true-mel"  # the method that fills each gap from its true Mel: a perfect inpainter
FIGURE_GAPS = 4  # spectrogram figures and audio snippets for this many gaps
SNIPPET_S = 1.0  # seconds each side of a gap in the snippets and the ViSQOL window


# What a run writes into REPORT_DIR; an earlier run's are all removed before another replaces it.
REPORT_FILES = ("metrics.json", "metrics.csv", "index.html")
REPORT_FOLDERS = ("damaged", "repaired", "snippets", "spectrograms", "plots")


class EarlierEvaluationError(ValueError):
    """REPORT_DIR holds an earlier run's report, and it is not to be replaced."""


class NothingReadError(Exception):
    """None of the audio files below IN_DIR could be read; ``reasons``: a line for each."""

    def __init__(self, in_dir: Path, reasons: list[str]):
        self.reasons = reasons
        super().__init__(f"none of the {len(reasons)} audio files below {in_dir} could be read")


def earlier_evaluation(out_dir: Path) -> list[str]:
    """The names in ``out_dir`` that a run of ``evaluate`` writes (empty: none there)."""
    return [name for name in (*REPORT_FILES, *REPORT_FOLDERS) if os.path.lexists(Path(out_dir) / name)]


def check_report_folder(out_dir: Path, overwrite: bool) -> None:
    """EarlierEvaluationError where ``out_dir`` holds an earlier run's files and ``overwrite`` is not
    given: the new run's files would lie beside the old ones, and its metrics.json over them."""
    found = earlier_evaluation(out_dir)
    if found and not overwrite:
        raise EarlierEvaluationError(f"{out_dir} holds an earlier evaluation ({', '.join(found)}): --overwrite to replace it")


def remove_earlier_evaluation(out_dir: Path) -> None:
    """Remove what an earlier run wrote into ``out_dir`` (:data:`REPORT_FILES`, :data:`REPORT_FOLDERS`)
    and nothing else there.  metrics.json goes first: a removal stopped half-way leaves no report
    naming files that are gone."""
    for name in (*REPORT_FILES, *REPORT_FOLDERS):
        path = Path(out_dir) / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


# LSAR (the classical repair of short dropouts) is scored on gaps up to this long; longer ones
# cost it minutes and it fades them to silence.
LSAR_MAX_S = 0.06


def punch_gaps(n_samples: int, rate: int, lengths_ms, rng: np.random.Generator, edge_s: float = 1.0) -> list[Gap]:
    """One gap per entry of ``lengths_ms`` (as many as fit), at random places at least ``edge_s``
    from the file's edges and from each other."""
    gaps: list[Gap] = []
    edge = int(edge_s * rate)
    for ms in rng.permutation(list(lengths_ms)):
        length = int(ms * rate / 1000)
        for _ in range(100):
            start = int(rng.integers(edge, max(edge + 1, n_samples - edge - length)))
            candidate = Gap(start, start + length, f"{int(ms)} ms")
            if candidate.end <= n_samples - edge and all(
                candidate.end + edge <= g.start or g.end + edge <= candidate.start for g in gaps
            ):
                gaps.append(candidate)
                break
    return sorted(gaps, key=lambda g: g.start)


def clean_excerpt(audio: Audio, seconds: float | None, subtype: str = "FLOAT") -> np.ndarray:
    """What ``evaluate`` scores against: the middle ``seconds`` of ``audio`` (all of it: None) as a
    WAV file of ``subtype`` holds it."""
    return _as_stored(_excerpt(audio, seconds), subtype)


def _excerpt(audio: Audio, seconds: float | None) -> np.ndarray:
    x = audio.as_float()
    if seconds and x.shape[1] > seconds * audio.sample_rate:
        n = int(seconds * audio.sample_rate)
        start = (x.shape[1] - n) // 2
        x = x[:, start : start + n]
    return x


def report_names(sources: list[Path], in_dir: Path) -> dict[Path, str]:
    """Each source's name in the report (its rows, its damaged and repaired files): its path below
    ``in_dir`` as a .wav file, or, where sources would share that name (a.wav and a.flac), its
    whole path with .wav added (a.wav.wav, a.flac.wav), which no other source has."""
    paths = {source: source.relative_to(in_dir).as_posix() for source in sources}
    names = {source: Path(path).with_suffix(".wav").as_posix() for source, path in paths.items()}
    while shared := {name for name, count in Counter(names.values()).items() if count > 1}:
        names.update({source: paths[source] + ".wav" for source, name in names.items() if name in shared})
    return names


def covers(detection: dict, gap: Gap) -> bool:
    """Whether a gap ``batch`` found (its report's entry) spans the punched ``gap`` whole: it may
    reach further, over digital silence of the music's own next to it."""
    return detection["start"] <= gap.start and gap.end <= detection["end"]


def gap_ms(gap: Gap, rate: int) -> int:
    """The length (whole ms) a punched gap was drawn at (its samples are that length, rounded down)."""
    return round(1000 * gap.length / rate)


class TrueMelEngine(Engine):
    """The Mel pipeline with a perfect inpainter: the inpaint stage takes each window's missing
    frames from the undamaged recording (``undamaged``, set per file), cut and analysed as the
    window was.  What this front end and vocoder can reach at best: a ceiling, not a method."""

    undamaged: np.ndarray | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.references_per_window = 0  # the true frames need no retrieved stretches (the vocoder may take one)
        # With an exact Mel the vocoder recovers the waveform next to the gap better than the
        # extrapolated edges do (held-out, 50 ms: SNR 11.5 dB against 7.9 with them): the best this
        # pipeline reaches with a perfect Mel is without them.
        self.edge_extrapolation_ms = 0.0

    def inpaint(self, windows: list[Window]) -> None:
        for w in windows:
            true = self.frontend.log_mel(self.cut_like(w, self.undamaged, w.file_start))
            w.filled = np.where(w.missing_frames[None, None], true, w.log_mel)


def _pipelines(inpainters: list[str], base: PipelineOptions) -> dict[str, PipelineOptions]:
    """Method name -> pipeline.  Mel methods run with the waveform repairers off, so each
    inpainter is measured on its own; the last entry is what `batch` does (with them on)."""
    methods = {}
    for name in ["interpolation", *[i for i in inpainters if i != "interpolation"]]:
        methods[name] = replace(base, inpainter=name, short_gap_ms=0.0, long_gap_ms=0.0)
    default = inpainters[0] if inpainters else base.inpainter
    methods["batch-default"] = replace(base, inpainter=default)
    return methods


class ViSQOL:
    """ViSQOL v3 audio mode (visqol-python, model bundled) on the gap plus a second each side, at 48 kHz."""

    RATE = 48000

    def __init__(self):
        from visqol import VisqolApi

        self.api = VisqolApi()
        self.api.create(mode="audio")

    def __call__(self, reference: np.ndarray, estimate: np.ndarray, start: int, end: int, rate: int) -> float:
        from .mel import resample

        margin = int(SNIPPET_S * rate)
        lo, hi = max(0, start - margin), min(reference.shape[1], end + margin)
        ref = resample(reference[:, lo:hi], rate, self.RATE).astype(np.float64)
        est = resample(estimate[:, lo:hi], rate, self.RATE).astype(np.float64)
        return float(np.mean([self.api.measure_from_arrays(r, e, self.RATE).moslqo for r, e in zip(ref, est)]))


class Methods:
    """Every method ``evaluate`` compares, built once: the waveform methods on their own (LSAR up to
    ``LSAR_MAX_S``, always pasting the best-matching stretch), the true-Mel ceiling, each
    inpainter's Mel pipeline alone, and what ``batch`` does."""

    def __init__(self, inpainters: list[str], base: PipelineOptions):
        self.base = base
        self.pipelines = _pipelines(inpainters, base)
        self.engines = {name: build_engine(options) for name, options in self.pipelines.items()}
        # The ceiling of the Mel pipeline: each gap's true Mel frames through the same vocoder.
        self.perfect_mel = build_engine(replace(base, short_gap_ms=0.0, long_gap_ms=0.0), TrueMelEngine)
        # The waveform methods on their own: LSAR (up to LSAR_MAX_S), and always pasting the best-matching stretch.
        self.waveform_methods = {
            base.short_gap_repairer: get_registry().build("sample_repairers", base.short_gap_repairer),
            base.long_gap_repairer: get_registry().build("sample_repairers", base.long_gap_repairer, max_match_ratio=np.inf,
                                                          long_gap_max_match_ratio=np.inf),
        }

    def runs_on(self, method: str, gap: Gap, rate: int) -> bool:
        """Whether ``method`` repairs ``gap`` and is scored on it: every method every gap, but LSAR
        only those up to ``LSAR_MAX_S``."""
        return method != self.base.short_gap_repairer or gap.length <= LSAR_MAX_S * rate

    @property
    def names(self) -> list[str]:
        return ["zeros", *self.waveform_methods, TRUE_MEL, *self.pipelines]

    def repair(self, clean: np.ndarray, damaged: np.ndarray, damaged_path: Path, gaps: list[Gap], rate: int, name: str,
               out_dir: Path, subtype: str, problems: list[str]) -> tuple[dict, dict[str, set[Gap]]]:
        """Each method's repair of ``damaged`` (also written under ``out_dir/repaired/<method>/``):
        method -> (the repaired audio as its file holds it, the batch report or None), and
        method -> the gaps it filled (the others stay zero).  What went wrong goes to ``problems``."""
        repaired = {"zeros": (damaged, None)}
        filled: dict[str, set[Gap]] = {}
        for method, repairer in self.waveform_methods.items():
            fills = {}
            for g in gaps:
                if not self.runs_on(method, g, rate):
                    continue  # minutes of CPU for a fill that is silence by the gap's middle: left as zeros, not scored
                try:
                    fills[g] = repairer.repair(damaged, g.start, g.end, rate)
                except ValueError as exc:  # e.g. too little audio around the gap: left as zeros
                    problems.append(f"{method} declined the {g.reason} gap in {name} at {g.start / rate:.2f} s (left silent): {exc}")
            repaired[method] = (_filled(damaged, fills, rate, out_dir / "repaired" / method / name, subtype), None)
            filled[method] = set(fills)
        self.perfect_mel.undamaged = clean
        fills, results = self.perfect_mel.repair(damaged, rate, gaps)
        repaired[TRUE_MEL] = (_filled(damaged, fills, rate, out_dir / "repaired" / TRUE_MEL / name, subtype), None)
        filled[TRUE_MEL] = set(fills)
        _note_unfilled(problems, TRUE_MEL, name, [r.to_dict(rate) for r in results])
        for method, engine in self.engines.items():
            target = out_dir / "repaired" / method / name
            report = repair_file(engine, damaged_path, target, name)
            if report.status == "failed":
                problems.append(f"{method} on {name}: {report.message}")
            _note_unfilled(problems, method, name, report.gaps)
            repaired[method] = (read(target).as_float() if target.exists() else damaged, report)
            filled[method] = {g for g in gaps if any(covers(d, g) and d["status"] == "repaired" for d in report.gaps)}
        return repaired, filled


def evaluate(in_dir: Path, out_dir: Path, inpainters: list[str], lengths_ms=DEFAULT_GAPS_MS, seed: int = 0,
             excerpt_s: float | None = None, base: PipelineOptions | None = None, on_file=None, visqol: bool = True,
             per_file: int = 1, bits: int | None = None, overwrite: bool = False) -> dict:
    """Scores every method on ``per_file`` gaps of each length per file (see the module docstring).

    ``bits`` (16 or 24): score as recordings of that PCM depth hold them: each excerpt rounded to
    it, every damaged and repaired file written in it (the pipelines keep it, as for any file).
    None: 32-bit float, where a lossy codec's empty bins are exactly zero.  ``out_dir`` inside
    ``in_dir`` (its files would be scored as clean recordings next time) or around it: FolderError.
    An ``out_dir`` that holds an earlier run's report: EarlierEvaluationError, unless ``overwrite``,
    when that run's files are removed once the first recording has been read.  No recording
    readable: NothingReadError, and nothing is written or removed."""
    check_folders(in_dir, out_dir)
    check_report_folder(out_dir, overwrite)
    earlier = bool(earlier_evaluation(out_dir))
    subtype = f"PCM_{bits}" if bits else "FLOAT"
    base = base or PipelineOptions()
    perceptual = ViSQOL() if visqol else None
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    methods = Methods(inpainters, base)
    rows, problems, files = [], [], {}
    not_run = set()  # the lengths (ms) of gaps LSAR is not run on
    unreadable = []
    for source, name in report_names(find_audio_files(in_dir), in_dir).items():
        try:
            audio = read(source)
        except AudioError as exc:
            unreadable.append(f"{source}: {exc}")
            problems.append(unreadable[-1])
            continue
        if earlier:  # not before: a run that reads no file leaves the earlier report as it was
            remove_earlier_evaluation(out_dir)
            earlier = False
        files[name] = source.relative_to(in_dir).as_posix()
        clean = clean_excerpt(audio, excerpt_s, subtype)
        rate = audio.sample_rate
        gaps = punch_gaps(clean.shape[1], rate, list(lengths_ms) * per_file, rng)
        no_room = [ms for ms in lengths_ms if ms not in {gap_ms(g, rate) for g in gaps}]
        if no_room:
            problems.append(f"no room for a gap of {', '.join(map(str, no_room))} ms in {name} ({clean.shape[1] / rate:.2f} s; "
                            "gaps keep a second from the edges and from each other)")
        damaged = clean.copy()
        for g in gaps:
            damaged[:, g.start : g.end] = 0.0
        damaged_path = out_dir / "damaged" / name
        _write(damaged, rate, damaged_path, subtype)
        repaired, filled = methods.repair(clean, damaged, damaged_path, gaps, rate, name, out_dir, subtype, problems)
        rows += _scores(name, clean, damaged, gaps, rate, repaired, filled, perceptual, methods.runs_on)
        not_run |= {gap_ms(g, rate) for g in gaps if not methods.runs_on(base.short_gap_repairer, g, rate)}
        if on_file:
            on_file(name)
    if not files and unreadable:  # a report of nothing would pass for a finished run
        raise NothingReadError(in_dir, unreadable)
    if earlier:  # no recording at all: the empty report replaces the earlier one all the same
        remove_earlier_evaluation(out_dir)
    if not_run:
        problems.append(f"{base.short_gap_repairer} is not scored beyond {1000 * LSAR_MAX_S:g} ms (minutes of CPU a gap, faded to "
                        f"silence): its files leave the {', '.join(map(str, sorted(not_run)))} ms gaps silent")
    result = {"melrestore": __version__, "pipeline": methods.pipelines["batch-default"].to_dict(), "methods": methods.names,
              "gaps_ms": list(lengths_ms), "per_file": per_file, "seed": seed, "subtype": subtype, "files": files,
              "summary": summarise_scores(rows), "problems": problems, "gaps": rows}
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomically(out_dir / "metrics.json", json.dumps(result, indent=2))
    from .evaluation_page import write_pictures_and_page

    write_pictures_and_page(result, in_dir, out_dir, excerpt_s, base)
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomically(out_dir / "metrics.csv", table.getvalue())
    return result


def _scores(name: str, clean: np.ndarray, damaged: np.ndarray, gaps: list[Gap], rate: int, repaired: dict,
            filled: dict[str, set[Gap]], perceptual: "ViSQOL | None", runs_on) -> list[dict]:
    """One row per method and gap of a file: the measures, whether ``batch`` found and filled the
    gap, and how many samples outside the gaps the method changed.  A gap the method is not run on
    (``runs_on``) has no measures and no ``filled``."""
    outside = np.ones(clean.shape[1], dtype=bool)
    for g in gaps:
        outside[g.start : g.end] = False
    rows = []
    for method, (estimate, report) in repaired.items():
        changed = int(np.sum(np.any(estimate[:, outside] != damaged[:, outside], axis=0)))
        for g in gaps:
            scored = runs_on(method, g, rate)
            scores = dict.fromkeys(METRICS)
            if scored:
                scores.update(gap_metrics(clean, estimate, g.start, g.end, rate),
                              visqol_mos=perceptual(clean, estimate, g.start, g.end, rate) if perceptual else None)
            rows.append(
                {
                    "file": name,
                    "method": method,
                    "gap_ms": gap_ms(g, rate),
                    "start": g.start,
                    "end": g.end,
                    "rate": rate,
                    **scores,
                    "detected": any(covers(d, g) for d in report.gaps) if report else None,
                    "filled": g in filled[method] if method in filled and scored else None,
                    "changed_outside": changed,
                }
            )
    return rows


def _note_unfilled(problems: list[str], method: str, name: str, gaps: list[dict]) -> None:
    for g in gaps:
        if g["status"] in ("skipped", "failed"):
            problems.append(f"{method} {g['status']} the gap in {name} at {g['start_s']:.2f} s (left silent): {g['message']}")


def _filled(damaged: np.ndarray, fills: dict[Gap, np.ndarray], rate: int, path: Path, subtype: str) -> np.ndarray:
    """``damaged`` with the ``fills`` put in, as a ``subtype`` file holds it; also written to ``path``."""
    estimate = damaged.copy()
    Engine.splice(estimate, fills)
    return _write(estimate, rate, path, subtype)


def _as_stored(audio: np.ndarray, subtype: str) -> np.ndarray:
    """``[channels, samples]`` as a WAV file of ``subtype`` holds it (float files: unchanged)."""
    return audio if subtype == "FLOAT" else to_float(quantise(audio, subtype))


def _write(audio: np.ndarray, rate: int, path: Path, subtype: str = "FLOAT") -> np.ndarray:
    """Write ``[channels, samples]`` as a WAV file of ``subtype``; returns the audio as that file holds it."""
    stored = audio.T.copy() if subtype == "FLOAT" else quantise(audio, subtype)
    write_atomic(Audio(stored, rate, "WAV", subtype, "FILE"), path)
    return audio if subtype == "FLOAT" else to_float(stored)


def summarise_scores(rows: list[dict]) -> dict:
    """Mean of each metric per method and gap length, plus recall and changed samples."""
    summary: dict = {}
    for row in rows:
        summary.setdefault(row["method"], {}).setdefault(str(row["gap_ms"]), []).append(row)
    out = {}
    for method, by_length in summary.items():
        out[method] = {}
        for length, items in by_length.items():
            stats = {m: float(np.mean([r[m] for r in items])) if items[0][m] is not None else None for m in METRICS}
            detected = [r["detected"] for r in items if r["detected"] is not None]
            stats["recall"] = float(np.mean(detected)) if detected else None
            stats["changed_outside"] = int(max(r["changed_outside"] for r in items))
            stats["unfilled"] = sum(1 for r in items if r.get("filled") is False)
            stats["n"] = len(items)
            out[method][length] = stats
    return out


def format_table(result: dict, metric: str) -> str:
    lengths = [str(g) for g in result["gaps_ms"]]
    head = f"{metric:<28}" + "".join(f"{g + ' ms':>10}" for g in lengths)
    lines = [head]
    for method in result["methods"]:
        stats = result["summary"].get(method, {})
        cells = "".join(f"{stats[g][metric]:>10.3f}" if stats.get(g, {}).get(metric) is not None else f"{'-':>10}" for g in lengths)
        lines.append(f"{method:<28}{cells}")
    return "\n".join(lines)
