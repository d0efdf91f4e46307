"""Pictures of repairs: spectrograms around a gap, and metrics against gap length."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

SECONDS_AROUND = 0.5


def _log_spectrogram(x: np.ndarray, n_fft: int = 1024) -> np.ndarray:
    hop = n_fft // 4
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    power = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)) ** 2
    return 10 * np.log10(power.T + 1e-10)


def gap_spectrograms(panels: dict[str, np.ndarray], rate: int, start: int, end: int, path: Path, title: str = "") -> Path:
    """One spectrogram per panel (``name -> [channels, samples]`` whole signals, mixed to mono),
    over the gap plus half a second each side, with the gap's edges marked."""
    margin = int(SECONDS_AROUND * rate)
    lo, hi = max(0, start - margin), end + margin
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.2 * len(panels)), sharex=True, squeeze=False)
    for ax, (name, audio) in zip(axes[:, 0], panels.items()):
        mono = np.asarray(audio, dtype=np.float64).mean(axis=0)[lo:hi]
        spec = _log_spectrogram(mono)
        extent = (lo / rate, lo / rate + len(mono) / rate, 0, rate / 2000)
        ax.imshow(spec, origin="lower", aspect="auto", extent=extent, vmin=spec.max() - 90, vmax=spec.max(), cmap="magma")
        for edge in (start, end):
            ax.axvline(edge / rate, color="cyan", linewidth=0.8, linestyle="--")
        ax.set_ylabel("kHz")
        ax.set_title(name, fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("seconds")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def metric_plot(summary: dict, methods: list[str], gaps_ms: list[int], metric: str, label: str, path: Path) -> Path:
    """``metric`` against gap length, one line per method."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for method in methods:
        points = [(g, summary[method][str(g)][metric]) for g in gaps_ms if str(g) in summary.get(method, {})]
        if points:
            ax.plot(*zip(*points), marker="o", label=method)
    ax.set_xscale("log")
    ax.set_xlabel("gap length (ms)")
    ax.set_ylabel(label)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
