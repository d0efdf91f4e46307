"""`melrestore evaluate`: punch gaps into clean recordings, repair them, score the fills.

Every method's repaired audio is written under ``REPORT_DIR/repaired/<method>/``
and the scores are computed from those files, so anyone can listen to them
and recompute the numbers.
"""

from __future__ import annotations

import csv
import html
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from .audio import Audio, AudioError, find_audio_files, read, write_atomic
from .batch import repair_file
from .gaps import Gap
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
TRUE_MEL = "true-mel"  # the method that fills each gap from its true Mel: a perfect inpainter
FIGURE_GAPS = 4  # spectrogram figures and audio snippets for this many gaps
SNIPPET_S = 1.0  # seconds each side of a gap in the snippets and the ViSQOL window


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


def _excerpt(audio: Audio, seconds: float | None) -> np.ndarray:
    x = audio.as_float()
    if seconds and x.shape[1] > seconds * audio.sample_rate:
        n = int(seconds * audio.sample_rate)
        start = (x.shape[1] - n) // 2
        x = x[:, start : start + n]
    return x


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


def evaluate(in_dir: Path, out_dir: Path, inpainters: list[str], lengths_ms=DEFAULT_GAPS_MS, seed: int = 0,
             excerpt_s: float | None = None, base: PipelineOptions | None = None, on_file=None, visqol: bool = True,
             per_file: int = 1) -> dict:
    """Scores every method on ``per_file`` gaps of each length per file (see the module docstring)."""
    base = base or PipelineOptions()
    perceptual = ViSQOL() if visqol else None
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    pipelines = _pipelines(inpainters, base)
    engines = {name: build_engine(options) for name, options in pipelines.items()}
    # The ceiling of the Mel pipeline: each gap's true Mel frames through the same vocoder.
    perfect_mel = build_engine(replace(base, short_gap_ms=0.0, long_gap_ms=0.0))
    # Waveform references, applied to every gap: LSAR, and always pasting the best-matching stretch.
    references = {
        base.short_gap_repairer: get_registry().build("sample_repairers", base.short_gap_repairer),
        base.long_gap_repairer: get_registry().build("sample_repairers", base.long_gap_repairer, max_match_ratio=np.inf,
                                                      long_gap_max_match_ratio=np.inf),
    }
    rows, problems = [], []
    for source in find_audio_files(in_dir):
        name = source.relative_to(in_dir).with_suffix(".wav").as_posix()
        try:
            audio = read(source)
        except AudioError as exc:
            problems.append(f"{source}: {exc}")
            continue
        clean = _excerpt(audio, excerpt_s)
        rate = audio.sample_rate
        gaps = punch_gaps(clean.shape[1], rate, list(lengths_ms) * per_file, rng)
        damaged = clean.copy()
        for g in gaps:
            damaged[:, g.start : g.end] = 0.0
        damaged_path = out_dir / "damaged" / name
        _write_float(damaged, rate, damaged_path)

        repaired = {"zeros": (damaged, None)}
        filled: dict[str, set[Gap]] = {}  # by method: the gaps it filled (the others stay zero)
        for method, repairer in references.items():
            fills = {}
            for g in gaps:
                if method == base.short_gap_repairer and g.length > LSAR_MAX_S * rate:
                    continue  # minutes of CPU for a fill that is silence by the gap's middle: left as zeros
                try:
                    fills[g] = repairer.repair(damaged, g.start, g.end, rate)
                except ValueError as exc:  # e.g. too little audio around the gap: left as zeros
                    problems.append(f"{method} declined the {g.reason} gap in {name} at {g.start / rate:.2f} s (left silent): {exc}")
            repaired[method] = (_filled(damaged, fills, rate, out_dir / "repaired" / method / name), None)
            filled[method] = set(fills)
        fills, results = perfect_mel.repair(damaged, rate, gaps, truth=clean)
        repaired[TRUE_MEL] = (_filled(damaged, fills, rate, out_dir / "repaired" / TRUE_MEL / name), None)
        filled[TRUE_MEL] = set(fills)
        _note_unfilled(problems, TRUE_MEL, name, [r.to_dict(rate) for r in results])
        for method, engine in engines.items():
            target = out_dir / "repaired" / method / name
            report = repair_file(engine, damaged_path, target, name)
            if report.status == "failed":
                problems.append(f"{method} on {name}: {report.message}")
            _note_unfilled(problems, method, name, report.gaps)
            repaired[method] = (read(target).as_float() if target.exists() else damaged, report)
            filled[method] = {g for g in gaps if any(d["start"] == g.start and d["status"] == "repaired" for d in report.gaps)}

        for method, (estimate, report) in repaired.items():
            found = {(d["start"], d["end"]) for d in report.gaps} if report else set()
            outside = np.ones(clean.shape[1], dtype=bool)
            for g in gaps:
                outside[g.start : g.end] = False
            changed = int(np.sum(np.any(estimate[:, outside] != damaged[:, outside], axis=0)))
            for g in gaps:
                rows.append(
                    {
                        "file": name,
                        "method": method,
                        "gap_ms": int(g.reason.split()[0]),
                        "start": g.start,
                        "end": g.end,
                        "rate": rate,
                        **gap_metrics(clean, estimate, g.start, g.end, rate),
                        "visqol_mos": perceptual(clean, estimate, g.start, g.end, rate) if perceptual else None,
                        "detected": (g.start, g.end) in found if report else None,
                        "filled": g in filled[method] if method in filled else None,
                        "changed_outside": changed,
                    }
                )
        if on_file:
            on_file(name)
    result = {"methods": ["zeros", *references, TRUE_MEL, *pipelines], "gaps_ms": list(lengths_ms), "per_file": per_file, "seed": seed,
              "summary": summarise(rows), "problems": problems, "gaps": rows}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(result, indent=2))
    write_pictures_and_page(result, in_dir, out_dir, excerpt_s, base)
    with open(out_dir / "metrics.csv", "w", newline="") as f:
        if rows:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return result


def _note_unfilled(problems: list[str], method: str, name: str, gaps: list[dict]) -> None:
    for g in gaps:
        if g["status"] in ("skipped", "failed"):
            problems.append(f"{method} {g['status']} the gap in {name} at {g['start_s']:.2f} s (left silent): {g['message']}")


def _filled(damaged: np.ndarray, fills: dict[Gap, np.ndarray], rate: int, path: Path) -> np.ndarray:
    """``damaged`` with the ``fills`` put in, also written to ``path``."""
    estimate = damaged.copy()
    for g, fill in fills.items():
        estimate[:, g.start : g.end] = fill
    _write_float(estimate, rate, path)
    return estimate


def _write_float(audio: np.ndarray, rate: int, path: Path) -> None:
    write_atomic(Audio(audio.T.copy(), rate, "WAV", "FLOAT", "FILE"), path)


def summarise(rows: list[dict]) -> dict:
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


HIGHER_IS_BETTER = {"snr_db", "visqol_mos"}
DIGITS = {"lsd_db": 1, "snr_db": 1, "log_mel_l1": 3, "spectral_convergence": 3, "visqol_mos": 2}
SHORT_LABELS = {"lsd_db": "LSD (dB)", "snr_db": "SNR (dB)", "log_mel_l1": "log-Mel L1", "spectral_convergence": "spectral convergence",
                "visqol_mos": "ViSQOL MOS-LQO"}
METRIC_HELP = {
    "lsd_db": "log-spectral distance: how far the fill's spectrum is from the original's inside the gap, in dB. Lower is better.",
    "snr_db": "signal-to-noise ratio of the fill against the original waveform. Only a fill with the original's phase scores "
              "above 0 dB; higher is better.",
    "log_mel_l1": "mean absolute difference of the natural-log Mel spectrogram over the frames that touch the gap (what the "
                  "inpainters are trained on). Lower is better.",
    "spectral_convergence": "size of the magnitude-spectrum error relative to the original's spectrum. Lower is better.",
    "visqol_mos": "ViSQOL v3 (audio mode), a model of perceived quality, on the gap plus a second each side: 1 (bad) to 5 "
                  "(excellent). Higher is better.",
}
REFERENCE = "interpolation"  # the paired-difference plots compare every method with this one
NOT_RANKED = ("zeros", TRUE_MEL)  # the floor and the ceiling: shown, never marked best


def method_help(method: str, base: PipelineOptions | None = None) -> str:
    """What a method of the evaluation is, in a sentence."""
    base = base or PipelineOptions()
    known = {
        "zeros": "the damaged input: the gap left as digital silence (the floor).",
        "lsar": "least-squares autoregressive interpolation of the waveform (Janssen et al. 1986) on every gap; "
                "made for gaps of a few milliseconds.",
        "similarity": "copies the best-matching stretch of the same recording into every gap, however poor the match "
                      "(batch uses it only where the match is close).",
        TRUE_MEL: "each gap's own Mel frames, taken from the original, through the same vocoder: what a perfect Mel "
                  "inpainter would reach (a ceiling, not a method one can run).",
        "interpolation": "Mel pipeline: the Mel frames interpolated linearly across the gap, then the vocoder "
                         f"({base.vocoder}).",
        "batch-default": f"what `melrestore batch` does: {base.short_gap_repairer} up to {base.short_gap_ms:g} ms, "
                         f"{base.long_gap_repairer} from {base.long_gap_ms:g} ms where a stretch matches closely, "
                         "the (first) inpainter otherwise.",
    }
    if method in known:
        return known[method]
    kind = "the U-Net" if method.startswith("unet") else "the fully connected baseline" if method.startswith("fc") else "the inpainter"
    return f"Mel pipeline with {kind} ({method}) filling the Mel frames, then the vocoder ({base.vocoder})."


def paired_differences(rows: list[dict], metric: str, reference: str = REFERENCE, leave_out=()) -> dict[str, dict[int, tuple[float, float]]]:
    """Per method (other than ``reference``, the floor, the ceiling and ``leave_out``) and gap length:
    the mean of ``metric`` minus the reference's on the same gaps, and its standard error.  Gaps a
    method did not fill are left out of its pairs."""
    ref = {(r["file"], r["start"]): r[metric] for r in rows if r["method"] == reference and r[metric] is not None}
    diffs: dict[str, dict[int, list[float]]] = {}
    for r in rows:
        if (r["method"] not in (reference, *NOT_RANKED, *leave_out) and r[metric] is not None and r.get("filled") is not False
                and (r["file"], r["start"]) in ref):
            diffs.setdefault(r["method"], {}).setdefault(r["gap_ms"], []).append(r[metric] - ref[(r["file"], r["start"])])
    return {
        method: {g: (float(np.mean(d)), float(np.std(d, ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0) for g, d in by_length.items()}
        for method, by_length in diffs.items()
    }


def html_table(result: dict, metric: str) -> str:
    """``metric`` by method and gap length as an HTML table, the best of each column in bold; a
    method that left gaps unfilled is marked and never counts as best."""
    lengths = [str(g) for g in result["gaps_ms"]]
    summary = result["summary"]
    digits = DIGITS.get(metric, 3)
    best = {}
    for g in lengths:
        ranked = [round(summary[m][g][metric], digits) for m in result["methods"] if m not in NOT_RANKED
                  and summary.get(m, {}).get(g, {}).get(metric) is not None and not summary[m][g].get("unfilled")]
        if ranked:
            best[g] = max(ranked) if metric in HIGHER_IS_BETTER else min(ranked)
    head = "".join(f"<th>{g} ms</th>" for g in lengths)
    body = []
    for method in result["methods"]:
        cells = []
        for g in lengths:
            stats = summary.get(method, {}).get(g, {})
            value = stats.get(metric)
            if value is None:
                cells.append("<td>–</td>")
                continue
            text = f"{round(value, digits) + 0.0:.{digits}f}"  # + 0.0: no "-0.0"
            if stats.get("unfilled"):
                note = f"{stats['unfilled']} of {stats['n']} gaps not filled (left silent)"
                cells.append(f"<td class='unfilled' title='{note}'>{text}<sup>*</sup><br><small>{note}</small></td>")
            elif best.get(g) == round(value, digits) and method not in NOT_RANKED:
                cells.append(f"<td class='best'><strong>{text}</strong></td>")
            else:
                cells.append(f"<td>{text}</td>")
        body.append(f"<tr><th scope='row'><a href='#m-{html.escape(method)}'>{html.escape(method)}</a></th>{''.join(cells)}</tr>")
    return (f"<table><caption>{html.escape(LABELS[metric])}: the best of each gap length in bold (the floor, zeros, "
            f"and the ceiling, {TRUE_MEL}, are not ranked)</caption><thead><tr><th>method</th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


PAGE_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:auto;padding:0 1em;line-height:1.4;color:#222}
table{border-collapse:collapse;margin:1em 0;font-variant-numeric:tabular-nums}
caption{text-align:left;font-weight:bold;padding:.3em 0}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th[scope=row]{text-align:left} thead th{background:#f3f3f3}
td.best{background:#d9f2d9} td.unfilled{background:#fbe3e3} td small{color:#844}
dt{font-weight:bold;margin-top:.4em} .problems li{color:#844}
.row{display:flex;flex-wrap:wrap;gap:1em} img{max-width:100%}
"""


def write_pictures_and_page(result: dict, in_dir: Path, out_dir: Path, excerpt_s: float | None, base: PipelineOptions | None = None) -> None:
    """Metric plots, spectrograms and audio snippets of a few gaps, and index.html tying them together."""
    from .figures import gap_spectrograms, metric_plot, paired_difference_plot

    methods = result["methods"]
    metrics = [m for m in METRICS if any(stats.get(m) is not None for by_len in result["summary"].values() for stats in by_len.values())]
    plots = []
    for metric in metrics:
        plots.append(metric_plot(result["summary"], methods, result["gaps_ms"], metric, LABELS[metric], out_dir / "plots" / f"{metric}.png"))
    differences = []
    short_gap = (base or PipelineOptions()).short_gap_repairer  # LSAR: tens of dB off from 50 ms on, it would flatten the plot
    if REFERENCE in methods:
        for metric in [m for m in ("lsd_db", "log_mel_l1") if m in metrics]:
            differences.append(paired_difference_plot(
                paired_differences(result["gaps"], metric, leave_out=(short_gap,)), result["gaps_ms"], f"{SHORT_LABELS[metric]}, method minus {REFERENCE}",
                out_dir / "plots" / f"{metric}-minus-{REFERENCE}.png"))
    zero_rows = [row for row in result["gaps"] if row["method"] == "zeros"]
    shown = zero_rows[:: max(1, len(zero_rows) // FIGURE_GAPS)][:FIGURE_GAPS]
    sections = []
    for row in shown:
        name, start, end, rate = row["file"], row["start"], row["end"], row["rate"]
        clean = _excerpt(read(next(p for p in find_audio_files(in_dir) if p.relative_to(in_dir).with_suffix(".wav").as_posix() == name)), excerpt_s)
        panels = {"original": clean, "damaged": read(out_dir / "damaged" / name).as_float()}
        default = methods[-1]
        panels[f"{default} (repaired)"] = read(out_dir / "repaired" / default / name).as_float()
        tag = f"{Path(name).stem}-{start}"
        picture = gap_spectrograms(panels, rate, start, end, out_dir / "spectrograms" / f"{tag}.png", f"{name}, {row['gap_ms']} ms gap")
        margin = int(SNIPPET_S * rate)
        audio_tags = []
        for method in ["original", *methods]:
            audio = clean if method == "original" else (read(out_dir / "repaired" / method / name).as_float() if method != "zeros" else panels["damaged"])
            snippet = out_dir / "snippets" / tag / f"{method}.wav"
            _write_float(audio[:, max(0, start - margin) : end + margin], rate, snippet)
            audio_tags.append(f"<div>{html.escape(method)}<br><audio controls preload='none' src='{snippet.relative_to(out_dir).as_posix()}'></audio></div>")
        sections.append(
            f"<h3>{html.escape(name)}: {row['gap_ms']} ms gap at {start / rate:.2f} s</h3>"
            f"<img src='{picture.relative_to(out_dir).as_posix()}' alt='spectrograms of the original, the damaged and the repaired audio'>"
            f"<div class='row'>{''.join(audio_tags)}</div>"
        )

    n_files = len({r["file"] for r in result["gaps"]})
    counts = {g: result["summary"].get("zeros", {}).get(str(g), {}).get("n", 0) for g in result["gaps_ms"]}
    problems = list(result["problems"])
    for method, by_length in result["summary"].items():
        for g, stats in by_length.items():
            if stats.get("recall") is not None and stats["recall"] < 1:
                problems.append(f"{method}: the detector found {stats['recall']:.0%} of the {g} ms gaps")
            if stats["changed_outside"]:
                problems.append(f"{method}: {stats['changed_outside']} samples outside the {g} ms gaps changed")
    problem_html = ("<ul class='problems'>" + "".join(f"<li>{html.escape(p)}</li>" for p in problems) + "</ul>" if problems else
                    "<p>None: every method filled every gap, the detector found every gap, and no sample outside the gaps changed.</p>")
    glossary = "".join(f"<dt id='m-{html.escape(m)}'>{html.escape(m)}</dt><dd>{html.escape(method_help(m, base))}</dd>" for m in methods)
    glossary_metrics = "".join(f"<dt>{html.escape(SHORT_LABELS[m])}</dt><dd>{html.escape(METRIC_HELP[m])}</dd>" for m in metrics)
    tables = "".join(html_table(result, m) for m in metrics)
    images = "".join(f"<img src='{p.relative_to(out_dir).as_posix()}' alt='{html.escape(p.stem)} against gap length'>" for p in plots)
    difference_images = "".join(f"<img src='{p.relative_to(out_dir).as_posix()}' alt='{html.escape(p.stem)}'>" for p in differences)
    difference_text = (
        f"<h2>Against {REFERENCE}, gap by gap</h2><p>Each method's score minus {REFERENCE}'s on the same gaps: the mean, "
        "with one standard error as the bar. Below zero the method is better for LSD and log-Mel L1; a bar that crosses "
        "zero means the two cannot be told apart on these gaps. Gaps a method did not fill are left out of its "
        f"points; {html.escape(short_gap)}, tens of dB behind from 50 ms on, is left out to keep the scale readable.</p>" + difference_images) if differences else ""
    (out_dir / "index.html").write_text(
        "<!doctype html><html lang='en'><meta charset='utf-8'><title>melrestore evaluation</title>"
        f"<style>{PAGE_STYLE}</style><h1>melrestore evaluation</h1>"
        f"<p>{n_files} clean files; gaps of {', '.join(map(str, result['gaps_ms']))} ms punched in at random places "
        f"(seed {result['seed']}; gaps per length: {', '.join(f'{g} ms: {n}' for g, n in counts.items())}), each repaired "
        "by every method and scored inside the gap against the original. metrics.json and metrics.csv hold every gap; "
        "the repaired files are under repaired/.</p>"
        f"<h2>Problems</h2>{problem_html}"
        f"<h2>Scores</h2>{tables}"
        f"<h2>Methods</h2><dl>{glossary}</dl><h2>Metrics</h2><dl>{glossary_metrics}</dl>"
        f"<h2>Scores against gap length</h2>{images}{difference_text}"
        f"<h2>Listen</h2><p>Spectrograms and audio of a few gaps, a second each side.</p>{''.join(sections)}</html>",
        encoding="utf-8",
    )
