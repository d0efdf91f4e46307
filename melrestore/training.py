"""Training the learned inpainters on random windows with random gaps.

Each track is analysed once (log-Mel per channel, at the model's analysis
settings); windows and gaps are then drawn on the fly from a seeded generator,
so a run is reproducible and resumable.  A window's missing frames are exactly
the frames the engine marks for a gap (every frame overlapping it), so the
network trains on what it will see.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import networks
from .audio import AudioError, read
from .mel import MelFrontend, MelSettings, resample


@dataclass
class TrainConfig:
    architecture: str = "unet"
    model: dict = None
    steps: int = 3000
    batch_frames: int = 2048  # frames per step: batch size = batch_frames // window
    learning_rate: float = 1e-3
    seed: int = 0
    validate_every: int = 200
    validation_windows: int = 48  # per window length
    context_frames: int = 16
    max_gap_seconds: float = 3.0
    validation_percent: int = 15
    threads: int = 0  # 0 = torch's default
    windows: list[int] | None = None  # window lengths (frames) to train and run at; None = the architecture's
    init_from: str | None = None  # start from this checkpoint's weights (fine-tuning)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown [training] keys: {', '.join(sorted(unknown))}")
        return cls(**data)


def analyse_tracks(files: list[Path], settings: MelSettings, problems: list[str], progress=None) -> list[np.ndarray]:
    """Log-Mel ``[n_mels, frames]`` per channel of each readable file."""
    frontend = MelFrontend(settings)
    tracks = []
    for path in files:
        try:
            audio = read(path)
        except AudioError as exc:
            problems.append(f"{path}: {exc}")
            continue
        waveform = resample(audio.as_float(), audio.sample_rate, settings.sample_rate)
        tracks.extend(frontend.log_mel(waveform))
        if progress:
            progress(path)
    return tracks


class WindowSampler:
    """Random windows with one random gap each, drawn from analysed tracks."""

    def __init__(self, tracks: list[np.ndarray], settings: MelSettings, windows: tuple[int, ...], context: int, max_gap_seconds: float, seed: int):
        self.tracks = [t for t in tracks if t.shape[1] > windows[-1]]
        if not self.tracks:
            raise ValueError(f"no track is longer than {windows[-1]} frames")
        lengths = np.array([t.shape[1] for t in self.tracks], dtype=np.float64)
        self.weights = lengths / lengths.sum()
        self.rng = np.random.default_rng(seed)
        # Missing frames for the shortest and longest gap (10 ms .. max_gap_seconds).
        s = settings
        frames = lambda seconds: math.ceil((seconds * s.sample_rate + s.n_fft) / s.hop_length) + 1  # noqa: E731
        # Each window length trains on the gaps the engine would give it; lengths no gap needs are dropped.
        self.gap_bounds = {}
        low = frames(0.01)
        for window in windows:
            high = min(window - 2 * context, frames(max_gap_seconds))
            if high >= low:
                self.gap_bounds[window] = (low, high)
                low = high + 1
        self.windows = tuple(self.gap_bounds)

    def batch(self, window: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        low, high = self.gap_bounds[window]
        mels = np.empty((size, self.tracks[0].shape[0], window), dtype=np.float32)
        missing = np.zeros((size, window), dtype=bool)
        context = (window - high) // 2
        for i in range(size):
            track = self.tracks[self.rng.choice(len(self.tracks), p=self.weights)]
            start = self.rng.integers(0, track.shape[1] - window)
            mels[i] = track[:, start : start + window]
            gap = int(self.rng.integers(low, high + 1))
            # Mostly centred, as the engine cuts them; sometimes off-centre, as at a file's edges.
            centre = (window - gap) // 2
            offset = centre if self.rng.random() < 0.5 else int(self.rng.integers(context, window - context - gap + 1))
            missing[i, offset : offset + gap] = True
        return mels, missing


def masked_l1(prediction: torch.Tensor, target: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
    """Mean absolute error on the missing frames only (normalised log-Mel units)."""
    weight = missing[:, None, None, :].expand_as(prediction).float()
    return (weight * (prediction - target).abs()).sum() / weight.sum().clamp(min=1)


def _to_tensors(mels: np.ndarray, missing: np.ndarray):
    inputs, base, mean, std = networks.prepare(mels, missing)
    target = (mels - base) / std[:, None, None]  # the correction the network should predict
    return torch.from_numpy(inputs), torch.from_numpy(target[:, None].astype(np.float32)), torch.from_numpy(missing)


class Trainer:
    def __init__(self, config: TrainConfig, settings: MelSettings, train_tracks, validation_tracks, out_dir: Path, log=print):
        self.config, self.settings, self.out_dir, self.log = config, settings, Path(out_dir), log
        torch.manual_seed(config.seed)
        if config.threads:
            torch.set_num_threads(config.threads)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model_config = dict(config.model or {})
        model_config.setdefault("n_mels", settings.n_mels)
        self.model = networks.build(config.architecture, model_config).to(self.device)
        self.model_config = self.model.config
        if config.init_from:
            self.model.load_state_dict(networks.load_checkpoint(config.init_from)["state_dict"])
        windows = tuple(config.windows or networks.window_frames(config.architecture, self.model_config))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate)
        self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer, max_lr=config.learning_rate, total_steps=config.steps, pct_start=0.05
        )
        sampler_args = (settings, windows, config.context_frames, config.max_gap_seconds)
        self.sampler = WindowSampler(train_tracks, *sampler_args, seed=config.seed)
        self.windows = self.sampler.windows
        # A fixed validation set, drawn once.
        validation = WindowSampler(validation_tracks, *sampler_args, seed=config.seed + 1)
        self.validation = {w: validation.batch(w, config.validation_windows) for w in self.windows}
        self.step, self.best, self.history = 0, math.inf, []

    def checkpoint(self, metrics: dict, with_optimizer: bool) -> dict:
        state = {
            "format": networks.CHECKPOINT_FORMAT,
            "architecture": self.config.architecture,
            "model_config": self.model_config,
            "window_frames": list(self.windows),
            "max_gap_seconds": self.config.max_gap_seconds,
            "mel_settings": self.settings.to_dict(),
            "train_config": self.config.__dict__,
            "metrics": metrics,
            "history": self.history,
            "step": self.step,
            "state_dict": {k: v.cpu() for k, v in self.model.state_dict().items()},
        }
        if with_optimizer:
            state["optimizer"] = self.optimizer.state_dict()
            state["scheduler"] = self.scheduler.state_dict()
            state["rng"] = self.sampler.rng.bit_generator.state
            state["best"] = self.best
        return state

    def resume(self, path: Path) -> None:
        state = torch.load(path, map_location=self.device, weights_only=False)
        self.model.load_state_dict(state["state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.sampler.rng.bit_generator.state = state["rng"]
        self.step, self.best, self.history = state["step"], state["best"], state["history"]
        self.log(f"resumed from {path} at step {self.step}")

    @torch.no_grad()
    def validate(self) -> dict:
        """Masked L1 (normalised log-Mel) of the model and of plain interpolation, per window length."""
        self.model.eval()
        metrics = {}
        for window, (mels, missing) in self.validation.items():
            inputs, target, mask = _to_tensors(mels, missing)
            prediction = self.model(inputs.to(self.device)).cpu()
            metrics[f"l1_{window}"] = masked_l1(prediction, target, mask).item()
            metrics[f"interp_l1_{window}"] = masked_l1(torch.zeros_like(target), target, mask).item()
        metrics["l1"] = float(np.mean([metrics[f"l1_{w}"] for w in self.windows]))
        metrics["interp_l1"] = float(np.mean([metrics[f"interp_l1_{w}"] for w in self.windows]))
        self.model.train()
        return metrics

    def run(self, progress=None) -> dict:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.model.train()
        started = time.time()
        metrics = {}
        while self.step < self.config.steps:
            window = self.windows[self.sampler.rng.integers(len(self.windows))]
            inputs, target, mask = _to_tensors(*self.sampler.batch(window, max(1, self.config.batch_frames // window)))
            loss = masked_l1(self.model(inputs.to(self.device)), target.to(self.device), mask.to(self.device))
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            self.step += 1
            if progress:
                progress(self.step, loss.item())
            if self.step % self.config.validate_every == 0 or self.step == self.config.steps:
                metrics = self.validate()
                metrics["elapsed_s"] = round(time.time() - started, 1)
                self.history.append({"step": self.step, **metrics})
                improved = metrics["l1"] < self.best
                if improved:
                    self.best = metrics["l1"]
                    torch.save(self.checkpoint(metrics, with_optimizer=False), self.out_dir / "best.pt")
                torch.save(self.checkpoint(metrics, with_optimizer=True), self.out_dir / "last.pt")
                self.log(
                    f"step {self.step}: validation L1 {metrics['l1']:.4f} (interpolation {metrics['interp_l1']:.4f})"
                    + (" best" if improved else "")
                )
        return metrics


def train(config: dict, dataset, out_dir: Path, resume: bool = False, log=print, progress_factory=None) -> dict:
    """Train from a parsed config (``[mel]``, ``[model]``, ``[training]``) on a data set object."""
    settings = MelSettings.from_dict(config.get("mel", {}))
    train_config = TrainConfig.from_dict({**config.get("training", {}), "model": config.get("model", {})})
    for line in dataset.problems:
        log(f"data: {line}")
    splits = {split: dataset.files(split) for split in ("train", "validation")}
    log(f"data: {len(splits['train'])} training files, {len(splits['validation'])} validation files")
    if not splits["train"] or not splits["validation"]:
        raise ValueError("need at least one training and one validation file")
    problems: list[str] = []
    tracks = {split: analyse_tracks(files, settings, problems) for split, files in splits.items()}
    for line in problems:
        log(f"skipped {line}")
    trainer = Trainer(train_config, settings, tracks["train"], tracks["validation"], out_dir, log=log)
    if resume and (Path(out_dir) / "last.pt").exists():
        trainer.resume(Path(out_dir) / "last.pt")
    progress = progress_factory(trainer.config.steps, trainer.step) if progress_factory else None
    try:
        return trainer.run(progress)
    finally:
        if progress:
            progress.close()
