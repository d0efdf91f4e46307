"""Pictures of repairs: spectrograms around a gap, and metrics against gap length."""

from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .methods import FILLING, describe  # noqa: E402

DB_RANGE = 90  # the spectrograms' colour scale: this many dB below the loudest bin
DPI = 90

SECONDS_AROUND = 0.5
# How a filled gap was filled (GapResult.method), in words for a figure's title (no pipeline at hand:
# the slots, not the plugins, are named).
METHOD_NAMES = {method: f"filled by {describe(method)}" for method in FILLING}


def _log_spectrogram(x: np.ndarray, n_fft: int = 1024) -> np.ndarray:
    hop = n_fft // 4
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    power = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)) ** 2
    return 10 * np.log10(power.T + 1e-10)


def gap_spectrograms(panels: dict[str, np.ndarray], rate: int, start: int, end: int, path: Path | None, title: str = ""):
    """One spectrogram per panel (``name -> [channels, samples]`` whole signals, mixed to mono; an
    array or anything sliced like one), over the gap plus half a second each side, with the gap's
    edges marked, on one dB scale.  Saved to ``path``; with ``path`` None the matplotlib figure is
    returned instead."""
    margin = int(SECONDS_AROUND * rate)
    lo, hi = max(0, start - margin), end + margin
    monos = {name: np.asarray(audio[:, lo:hi], dtype=np.float64).mean(axis=0) for name, audio in panels.items()}
    specs = {name: _log_spectrogram(mono) for name, mono in monos.items()}
    top = max(spec.max() for spec in specs.values())
    fig, axes = plt.subplots(len(panels), 1, figsize=(8.5, 2.2 * len(panels) + 0.4), sharex=True, squeeze=False, layout="constrained")
    for ax, (name, spec) in zip(axes[:, 0], specs.items()):
        extent = (lo / rate, lo / rate + len(monos[name]) / rate, 0, rate / 2000)
        image = ax.imshow(spec, origin="lower", aspect="auto", extent=extent, vmin=top - DB_RANGE, vmax=top, cmap="magma")
        for i, edge in enumerate((start, end)):
            ax.axvline(edge / rate, color="cyan", linewidth=0.9, linestyle="--", label="gap edges" if i == 0 else None)
        ax.set_ylabel("kHz")
        ax.set_title(name, fontsize=9, loc="left")
    axes[0, 0].legend(loc="upper right", fontsize=8, framealpha=0.8)
    axes[-1, 0].set_xlabel("seconds")
    fig.colorbar(image, ax=axes[:, 0].tolist(), label="power (dB)", shrink=0.9)
    if title:
        fig.suptitle(title, fontsize=10)
    if path is None:
        return fig
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


# Colour, marker and dash per line, so that lines on top of each other still show.
_STYLES = [(c, m, d) for c, m, d in zip(plt.get_cmap("tab10").colors, "osD^vP*Xph", ["-", "--", "-.", ":"] * 3)]


def _ms_axis(ax, gaps_ms: list[int]) -> None:
    """A log axis of gap lengths with plain millisecond ticks at the measured lengths."""
    ax.set_xscale("log")
    ax.set_xticks(gaps_ms, [str(g) for g in gaps_ms])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("gap length (ms)")
    ax.grid(True, alpha=0.3)


def _save(fig, ax, path: Path | None):
    """Save to ``path`` (legend beside the plot); with ``path`` None return the figure."""
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if path is None:
        return fig
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def metric_plot(summary: dict, methods: list[str], gaps_ms: list[int], metric: str, label: str, path: Path | None):
    """``metric`` against gap length, one line per method."""
    fig, ax = plt.subplots(figsize=(7.5, 4))
    for method, (colour, marker, dash) in zip(methods, itertools.cycle(_STYLES)):
        points = [(g, summary[method][str(g)][metric]) for g in gaps_ms if str(g) in summary.get(method, {})]
        if points:
            ax.plot(*zip(*points), marker=marker, linestyle=dash, color=colour, label=method, alpha=0.85)
    _ms_axis(ax, gaps_ms)
    ax.set_ylabel(label)
    return _save(fig, ax, path)


def paired_difference_plot(differences: dict[str, dict[int, tuple[float, float]]], gaps_ms: list[int], label: str, path: Path | None):
    """Per method and gap length, the mean paired difference to a reference method with its
    standard error as an error bar (``differences[method][gap_ms] = (mean, standard error)``)."""
    fig, ax = plt.subplots(figsize=(7.5, 4))
    ax.axhline(0.0, color="black", linewidth=0.8)
    offsets = np.linspace(-0.06, 0.06, len(differences)) if len(differences) > 1 else [0.0]  # spread so bars do not hide each other
    for (method, by_length), (colour, marker, _), offset in zip(differences.items(), itertools.cycle(_STYLES), offsets):
        lengths = [g for g in gaps_ms if g in by_length]
        means = [by_length[g][0] for g in lengths]
        errors = [by_length[g][1] for g in lengths]
        ax.errorbar([g * 10**offset for g in lengths], means, yerr=errors, marker=marker, color=colour, capsize=3, linestyle="none", label=method)
    _ms_axis(ax, gaps_ms)
    ax.set_ylabel(label)
    return _save(fig, ax, path)
