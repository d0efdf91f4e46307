"""Linear interpolation of log-Mel frames across missing runs: the baseline every model must beat."""

from __future__ import annotations

import numpy as np

from .gaps import runs


def interpolate_missing(log_mel: np.ndarray, missing: np.ndarray, edge_frames: int = 2) -> np.ndarray:
    """Fill missing frames of ``[batch, n_mels, frames]`` by a straight line (per band) between the
    mean of the ``edge_frames`` known frames on each side.  A run at the window edge holds the other side."""
    out = np.array(log_mel, dtype=np.float32, copy=True)
    n_frames = out.shape[-1]
    for b in range(out.shape[0]):
        known = ~missing[b]
        if not known.any():
            continue
        for start, end in runs(missing[b]):
            left = out[b, :, max(0, start - edge_frames) : start]
            right = out[b, :, end : min(n_frames, end + edge_frames)]
            lv = left.mean(axis=-1) if left.shape[-1] else right.mean(axis=-1)
            rv = right.mean(axis=-1) if right.shape[-1] else lv
            t = (np.arange(start, end) - start + 1) / (end - start + 1)
            out[b, :, start:end] = lv[:, None] * (1 - t) + rv[:, None] * t
    return out
