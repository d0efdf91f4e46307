"""The learned inpainters' networks and the pre/post-processing they share.

Both networks see the same input planes over ``[n_mels, frames]``: the
log-Mel window with its missing frames filled by linear interpolation,
normalised by the known frames' mean and spread, the mask of missing frames,
(``in_channels >= 3``) what the damaged window still shows on the missing
frames, and (``references = k``) two planes for each of the k stretches of the
same recording that best match the window (``melrestore.retrieval``): the
stretch's log-Mel relative to the interpolation, and how well it matched.  They predict a correction to the interpolation on the missing
frames; the last layer starts at zero, so an untrained network *is* the
interpolation baseline and training can only be measured against it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .interpolate import interpolate_missing

DAMAGED_CLIP = 4.0  # bound (in known-frame spreads) of the damaged-window plane


def prepare(log_mel: np.ndarray, missing: np.ndarray, planes: int = 2,
            references: np.ndarray | None = None, quality: np.ndarray | None = None):
    """-> (network input ``[B, planes, n_mels, T]``, interpolated base, mean ``[B]``, std ``[B]``).

    ``log_mel`` is the window as the engine analysed it, gap samples zeroed.  Planes: the
    interpolation, normalised; the mask; (``planes >= 3``) what the damaged window still
    shows on the missing frames, relative to the interpolation: frames that only partly
    overlap the gap keep most of their content, which a straight line throws away; then, for
    each of ``references`` ``[B, k, n_mels, T]`` (log-Mel of the best-matching stretches, cut
    and analysed like the window), the stretch relative to the interpolation and a constant
    plane of its match ``quality`` ``[B, k]`` (0 = no reference: its planes are all zero).
    A network that takes references (``planes > 3``) called without them is told "no match".
    """
    if references is None and planes > 3:
        k = (planes - 3) // 2
        references = np.zeros((len(log_mel), k, *log_mel.shape[1:]), dtype=np.float32)
        quality = np.zeros((len(log_mel), k), dtype=np.float32)
    base = interpolate_missing(log_mel, missing)
    known = ~missing[:, None, :]
    count = np.maximum(known.sum(axis=(1, 2)) * log_mel.shape[1], 1)
    mean = np.where(known, log_mel, 0).sum(axis=(1, 2)) / count
    var = (np.where(known, log_mel - mean[:, None, None], 0) ** 2).sum(axis=(1, 2)) / count
    std = np.sqrt(var) + 1e-3
    normalised = (base - mean[:, None, None]) / std[:, None, None]
    mask = np.broadcast_to(missing[:, None, :], log_mel.shape)
    stack = [normalised, mask]
    k = 0 if references is None else references.shape[1]
    if planes - 2 * k >= 3:
        # Fully silent frames sit at the log floor, far below anything else: clip them.
        seen = np.clip((log_mel - base) / std[:, None, None], -DAMAGED_CLIP, DAMAGED_CLIP)
        stack.append(np.where(mask, seen, 0.0))
    for r in range(k):
        present = (quality[:, r] > 0)[:, None, None]
        relative = np.clip((references[:, r] - base) / std[:, None, None], -DAMAGED_CLIP, DAMAGED_CLIP)
        stack.append(np.where(present, relative, 0.0))
        stack.append(np.broadcast_to(quality[:, r, None, None], log_mel.shape))
    if len(stack) != planes:
        raise ValueError(f"the network takes {planes} input planes; {len(stack)} were prepared")
    inputs = np.stack(stack, axis=1).astype(np.float32)
    return inputs, base, mean.astype(np.float32), std.astype(np.float32)


def finish(output: np.ndarray, base: np.ndarray, std: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Apply the network's normalised correction ``[B, 1, n_mels, T]`` to the missing frames."""
    corrected = base + output[:, 0] * std[:, None, None]
    return np.where(missing[:, None, :], corrected, base).astype(np.float32)


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1), nn.GELU(), nn.Conv2d(c_out, c_out, 3, padding=1), nn.GELU()
    )


class UNet(nn.Module):
    """A small 2-D U-Net over (Mel band, frame).  Fully convolutional: any frame count that is a
    multiple of ``2 ** depth`` works.  The bottleneck also sees the window's mean over time,
    which reaches across gaps wider than the convolutions can."""

    def __init__(self, n_mels: int = 128, base_channels: int = 16, depth: int = 4, in_channels: int = 2):
        super().__init__()
        self.config = {"n_mels": n_mels, "base_channels": base_channels, "depth": depth, "in_channels": in_channels}
        widths = [base_channels * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList([_conv_block(in_channels if i == 0 else widths[i - 1], widths[i]) for i in range(depth)])
        self.pool = nn.AvgPool2d(2)
        self.bottom = _conv_block(2 * widths[depth - 1], widths[depth])
        self.up = nn.ModuleList([nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(depth))])
        self.merge = nn.ModuleList([_conv_block(2 * widths[i], widths[i]) for i in reversed(range(depth))])
        self.out = nn.Conv2d(widths[0], 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @property
    def multiple(self) -> int:
        return 2 ** self.config["depth"]

    def fits(self, frames: int) -> bool:
        """Whether the network runs on windows ``frames`` long (``window_rule`` says which do)."""
        return frames % self.multiple == 0

    @property
    def window_rule(self) -> str:
        return f"a multiple of {self.multiple} frames (2 ** depth)"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = torch.cat([x, x.mean(dim=3, keepdim=True).expand_as(x)], dim=1)
        x = self.bottom(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips)):
            x = merge(torch.cat([up(x), skip], dim=1))
        return self.out(x)


class FCBaseline(nn.Module):
    """A fully connected baseline, on a fixed window: each frame is squeezed to a few
    features, the whole window goes through a small MLP, and is expanded back per frame."""

    def __init__(self, n_mels: int = 128, frames: int = 512, frame_features: int = 8, hidden: int = 256, in_channels: int = 2):
        super().__init__()
        self.config = {"n_mels": n_mels, "frames": frames, "frame_features": frame_features, "hidden": hidden, "in_channels": in_channels}
        self.squeeze = nn.Conv1d(in_channels * n_mels, frame_features, 1)
        self.mlp = nn.Sequential(
            nn.Flatten(),
            nn.Linear(frame_features * frames, hidden),
            nn.GELU(),
            nn.Linear(hidden, hidden),
            nn.GELU(),
            nn.Linear(hidden, frame_features * frames),
        )
        self.expand = nn.Conv1d(frame_features, n_mels, 1)
        nn.init.zeros_(self.expand.weight)
        nn.init.zeros_(self.expand.bias)

    def fits(self, frames: int) -> bool:
        """Whether the network runs on windows ``frames`` long (``window_rule`` says which do)."""
        return frames == self.config["frames"]

    @property
    def window_rule(self) -> str:
        return f"{self.config['frames']} frames, its [model] frames"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, m, t = x.shape
        h = self.squeeze(x.reshape(b, c * m, t))
        h = self.mlp(h).reshape(b, -1, t)
        return self.expand(h).reshape(b, 1, m, t)


class PatchCritic(nn.Module):
    """A small patch discriminator for adversarial training (as GACELA uses on Mel): it sees a
    normalised log-Mel window, the fill composed into its missing frames, and the mask, and scores
    overlapping patches of it as real or filled.  Training only: it is never exported."""

    def __init__(self, channels: tuple[int, ...] = (32, 64, 128)):
        super().__init__()
        layers, c_in = [], 2
        for c_out in channels:
            layers.append(nn.Sequential(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)))
            c_in = c_out
        self.layers = nn.ModuleList(layers)
        self.score = nn.Conv2d(c_in, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """-> (patch scores ``[B, 1, F', T']``, the feature maps of each layer)."""
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return self.score(x), features


ARCHITECTURES = {"unet": UNet, "fc": FCBaseline}

# Window lengths (frames) each architecture is trained and run at.
UNET_WINDOWS = (64, 128, 256, 512)


def window_frames(architecture: str, config: dict) -> tuple[int, ...]:
    return (config["frames"],) if architecture == "fc" else UNET_WINDOWS


def build(architecture: str, config: dict) -> nn.Module:
    return ARCHITECTURES[architecture](**config)


def input_planes(model_config: dict) -> int:
    """Input planes of the network a config builds: 2 (interpolation and mask) where it does not say."""
    return model_config.get("in_channels", 2)
