"""The page of `melrestore evaluate`: index.html with its tables, plots, spectrograms and audio snippets."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from .atomic import write_text_atomically
from .audio import read
from .evaluate import FIGURE_GAPS, LABELS, LSAR_MAX_S, METRICS, SNIPPET_S, TRUE_MEL, _write, clean_excerpt
from .pipeline import PipelineOptions
from .wording import plural

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
        "lsar": "least-squares autoregressive interpolation of the waveform (Janssen et al. 1986), made for gaps of a few "
                f"milliseconds: run and scored on the gaps up to {1000 * LSAR_MAX_S:g} ms (longer ones would cost it minutes "
                "each, and it fades them to silence; they stay silent in its files).",
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
        clean = clean_excerpt(read(in_dir / result["files"][name]), excerpt_s, result["subtype"])
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
            _write(audio[:, max(0, start - margin) : end + margin], rate, snippet, result["subtype"])  # as deep as every file
            audio_tags.append(f"<div>{html.escape(method)}<br><audio controls preload='none' src='{snippet.relative_to(out_dir).as_posix()}'></audio></div>")
        sections.append(
            f"<h3>{html.escape(name)}: {row['gap_ms']} ms gap at {start / rate:.2f} s</h3>"
            f"<img src='{picture.relative_to(out_dir).as_posix()}' alt='spectrograms of the original, the damaged and the repaired audio'>"
            f"<div class='row'>{''.join(audio_tags)}</div>"
        )

    n_files = len(result["files"])  # read, whether or not a gap fit
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
    write_text_atomically(out_dir / "index.html", 
        "<!doctype html><html lang='en'><meta charset='utf-8'><title>melrestore evaluation</title>"
        f"<style>{PAGE_STYLE}</style><h1>melrestore evaluation</h1>"
        f"<p>{plural(n_files, 'clean file')}; gaps of {', '.join(map(str, result['gaps_ms']))} ms punched in at random places "
        f"(seed {result['seed']}; gaps per length: {', '.join(f'{g} ms: {n}' for g, n in counts.items())}), each repaired "
        "by every method and scored inside the gap against the original. metrics.json and metrics.csv hold every gap; "
        "the repaired files are under repaired/.</p>"
        f"<h2>Problems</h2>{problem_html}"
        f"<h2>Scores</h2>{tables}"
        f"<h2>Methods</h2><dl>{glossary}</dl><h2>Metrics</h2><dl>{glossary_metrics}</dl>"
        f"<h2>Scores against gap length</h2>{images}{difference_text}"
        f"<h2>Listen</h2><p>Spectrograms and audio of a few gaps, a second each side.</p>{''.join(sections)}</html>",
    )
