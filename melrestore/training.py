"""Training the learned inpainters on random windows with random gaps.

Each track is read once (samples per channel, at the model's analysis rate);
windows and gaps are then drawn on the fly, each window of each step from its
own seeded stream, so a run is reproducible and resumable.  A window is cut and
analysed as the engine does it (gap samples zeroed, every frame overlapping the
gap marked missing), so the network trains on what it will see.

Under ``torchrun`` the processes share each step's batch (DistributedDataParallel:
gloo on CPU, NCCL on GPUs): each draws its own windows of it, and only the first
validates, saves and logs.  The batch is the same for any number of processes, so
a run may be resumed with another number and still trains as one process would.
"""

from __future__ import annotations

import inspect
import math
import os
import time
import types
import typing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import networks, states
from .analysis import MAX_GAP_SECONDS, MIN_TRAINING_GAP_S
from .atomic import atomic_target
from .audio import AudioError, read
from .config import check_keys, check_type, digest
from .interpolate import interpolate_missing
from .mel import MIN_CONTEXT_FRAMES, MelFrontend, MelSettings, resample, window_for_gap
from .retrieval import RecordingFeatures, find_references, nearest_offset


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
    context_frames: int = MIN_CONTEXT_FRAMES
    max_gap_seconds: float = MAX_GAP_SECONDS
    validation_percent: int = 15
    threads: int = 0  # 0 = torch's default
    windows: list[int] | None = None  # window lengths (frames) to train and run at; None = the architecture's
    init_from: str | None = None  # start from this checkpoint's weights (fine-tuning)
    loss_per_window: bool = True  # each gap weighs the same in the loss (False: each missing value)
    gap_lengths: str = "log-uniform"  # how gap lengths are drawn: "log-uniform" (short ones as often as long) or "uniform"
    references: int = 0  # retrieved stretches of the same recording the network sees (two input planes each)
    other_gaps_per_minute: float = 0.0  # other gaps punched around each window's own (dense damage; see WindowSampler)
    texture_weight: float = 0.0  # weight of the texture-statistics loss next to the L1 (0 = L1 only)
    adversarial_weight: float = 0.0  # weight of a patch critic's verdict on the fill (0 = no critic; see Adversary)
    feature_matching_weight: float = 0.0  # weight of matching the critic's features of fill and truth
    critic_warmup: int = 0  # steps the critic trains alone before its terms reach the inpainter
    workers: int = 0  # processes drawing the batches ahead of the model (0 = the training process draws them)
    max_minutes: float = 0.0  # validate, save and stop after this many minutes (0 = run all the steps)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        check_keys("training", data, cls.__dataclass_fields__)
        for key, hint in typing.get_type_hints(cls).items():
            if key in data and key != "model" and data[key] is not None:  # [model] is checked against the network
                check_type("training", key, data[key], _plain_type(hint))
        windows = data.get("windows")
        if windows is not None and not _window_lengths(windows):
            raise ValueError(f"[training] windows takes window lengths in frames, whole numbers above 0 in ascending order"
                             f" (like [128, 256, 512]), not {windows!r}")
        config = cls(**data)
        config.check_model()
        return config

    def check_model(self) -> None:
        """Raise ValueError for an architecture melrestore does not have, or a [model] key that its
        constructor does not take or whose value is not of the type of that parameter's default."""
        if self.architecture not in networks.ARCHITECTURES:
            raise ValueError(f"[training] architecture must be one of {', '.join(networks.ARCHITECTURES)}, not {self.architecture!r}")
        parameters = inspect.signature(networks.ARCHITECTURES[self.architecture]).parameters
        model = self.model or {}
        check_keys("model", model, parameters)
        for key, value in model.items():
            check_type("model", key, value, type(parameters[key].default))


# [training] keys that say how a run is carried out, not what it learns: they may change on --resume.
RUN_KEYS = {"workers", "threads", "max_minutes", "validate_every", "init_from"}


def _save(checkpoint: dict, path: Path) -> None:
    """``torch.save`` through a temporary file renamed into place: a run killed while saving (or a
    full disk) leaves the previous checkpoint whole."""
    with atomic_target(path) as tmp:
        torch.save(checkpoint, tmp)


def _window_lengths(windows: list) -> bool:
    """Whether ``windows`` is a non-empty list of ints above 0, ascending (the engine picks the first that fits)."""
    if not windows or not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in windows):
        return False
    return all(a < b for a, b in zip(windows, windows[1:]))


def _plain_type(hint) -> type:
    """The class an annotation asks for: ``list`` for ``list[int] | None``."""
    if isinstance(hint, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return typing.get_origin(hint) or hint


def read_config(config: dict) -> tuple[MelSettings, TrainConfig]:
    """The analysis settings and training config of a parsed training config (``[mel]``, ``[model]``,
    ``[training]``); ValueError naming a key that its table does not take."""
    mel = config.get("mel", {})
    check_keys("mel", mel, MelSettings.__dataclass_fields__)  # MelSettings.from_dict would drop it unsaid
    training = config.get("training", {})
    check_keys("training", training, set(TrainConfig.__dataclass_fields__) - {"model"})  # the network's keys are [model]'s
    return MelSettings.from_dict(mel), TrainConfig.from_dict({**training, "model": config.get("model", {})})


def load_tracks(files: list[Path], settings: MelSettings, problems: list[str], progress=None) -> list[np.ndarray]:
    """Each readable file as ``[channels, samples]`` at the analysis rate: float32 for audio files;
    decoded caches (``.npy``, int16 at the analysis rate, from ``examples/prepare_training_data.py``)
    are memory-mapped, so a large data set costs no memory up front."""
    tracks = []
    for path in files:
        try:
            if Path(path).suffix == ".npy":
                tracks.append(np.load(path, mmap_mode="r"))
            else:
                audio = read(path)
                tracks.append(resample(audio.as_float(), audio.sample_rate, settings.sample_rate))
        except (AudioError, OSError, ValueError) as exc:
            problems.append(f"{path}: {exc}")
            continue
        if progress:
            progress(path)
    return tracks


def long_enough(track: np.ndarray, settings: MelSettings, windows: tuple[int, ...]) -> bool:
    """Whether ``track`` holds the longest window (the sampler draws no shorter track)."""
    return track.shape[-1] > settings.samples_for(max(windows))


def _as_float(samples: np.ndarray) -> np.ndarray:
    if samples.dtype == np.int16:
        return samples.astype(np.float32) / 32768.0
    return np.asarray(samples, dtype=np.float32)


class WindowSampler:
    """Random windows with one random gap each, cut from tracks the way the engine cuts them:
    a segment of samples, the gap zeroed, both analysed; the missing frames are those the
    engine would mark.  With ``references``, each window also gets the best-matching stretches
    of its own track, retrieved as the engine retrieves them (``melrestore.retrieval``), as near
    as the engine lets them lie (``nearest_offset``).
    ``batch`` returns (clean log-Mel, damaged log-Mel, missing frames, references, quality).

    With ``other_gaps_per_minute``, a window and each of its references also hold other gaps
    (zeroed, and missing in the window like its own), as a recording with dense damage leaves
    them: as many as that rate gives on average over the window, lengths drawn like the own
    gap's from 10 ms to ``max_gap_seconds``, each at least ``OTHER_GAP_DISTANCE_S`` from the own
    gap and from each other (as ``melrestore evaluate`` punches them).  The references are then
    retrieved as the engine does it, clean only where the window's own gap is."""

    OTHER_GAP_DISTANCE_S = 1.0

    def __init__(self, tracks: list[np.ndarray], settings: MelSettings, windows: tuple[int, ...], context: int,
                 max_gap_seconds: float, seed: int, gap_lengths: str = "log-uniform", references: int = 0,
                 other_gaps_per_minute: float = 0.0):
        if gap_lengths not in ("log-uniform", "uniform"):
            raise ValueError(f"gap_lengths must be 'log-uniform' or 'uniform', not {gap_lengths!r}")
        self.log_uniform = gap_lengths == "log-uniform"
        self.settings = settings
        self.frontend = MelFrontend(settings)
        self.references = references
        self.shortest_window = min(windows)
        self.edge = context * settings.hop_length + settings.n_fft // 2  # off-centre gaps keep the context frames known
        self.tracks = [t for t in tracks if long_enough(t, settings, windows)]
        if not self.tracks:
            raise ValueError(f"no track is longer than {max(windows)} frames")
        lengths = np.array([t.shape[-1] * t.shape[0] for t in self.tracks], dtype=np.float64)
        self.weights = lengths / lengths.sum()
        self._features: dict[int, RecordingFeatures] = {}
        self.rng = np.random.default_rng(seed)
        s = settings
        # Each window length trains on the gaps (in samples) the engine would give it, 10 ms and up;
        # lengths no gap needs are dropped.
        self.gap_bounds: dict[int, tuple[int, int]] = {}
        for gap in range(round(MIN_TRAINING_GAP_S * s.sample_rate), round(max_gap_seconds * s.sample_rate) + 1):
            window = window_for_gap(s.missing_frames_for(gap), windows, context)
            if window is None:
                break
            self.gap_bounds[window] = (self.gap_bounds.get(window, (gap,))[0], gap)
        self.windows = tuple(self.gap_bounds)
        if not self.windows:
            raise ValueError(f"no window of {list(windows)} frames holds a {1000 * MIN_TRAINING_GAP_S:g} ms gap with {context} known frames each side: "
                             "[training] windows needs a longer one")
        self.other_gaps_per_second = other_gaps_per_minute / 60
        self.other_gap_bounds = (round(MIN_TRAINING_GAP_S * s.sample_rate), round(max_gap_seconds * s.sample_rate))

    def recording(self, index: int) -> RecordingFeatures:
        """The retrieval features of a track's mono mix, computed on first use."""
        if index not in self._features:
            self._features[index] = RecordingFeatures.of_samples(_as_float(self.tracks[index]).mean(axis=0), self.frontend)
        return self._features[index]

    def batch(self, window: int, size: int):
        """``size`` windows, drawn one after another from the sampler's own stream."""
        return self.draw(window, [self.rng] * size)

    def draw(self, window: int, streams: list[np.random.Generator]):
        """One window from each of ``streams``."""
        size = len(streams)
        low, high = self.gap_bounds[window]
        length = self.settings.samples_for(window)
        clean = np.empty((size, length), dtype=np.float32)
        missing = np.zeros((size, length), dtype=bool)
        reference_audio = np.zeros((size, self.references, length), dtype=np.float32)
        reference_gaps = np.zeros((size, self.references, length), dtype=bool)  # other gaps punched into them
        quality = np.zeros((size, self.references), dtype=np.float32)
        for i, rng in enumerate(streams):
            index = int(rng.choice(len(self.tracks), p=self.weights))
            track = self.tracks[index]
            channel = int(rng.integers(track.shape[0]))
            start = int(rng.integers(0, track.shape[-1] - length))
            clean[i] = _as_float(track[channel, start : start + length])
            gap = self._gap_length(rng, low, high)
            # Mostly centred, as the engine cuts them; sometimes off-centre, as at a file's edges.
            offset = (length - gap) // 2
            if rng.random() >= 0.5 and length - self.edge - gap > self.edge:
                offset = int(rng.integers(self.edge, length - self.edge - gap + 1))
            missing[i, offset : offset + gap] = True
            own_frames = self.frontend.missing_frames(missing[i])
            if self.other_gaps_per_second:
                missing[i] |= self._other_gaps(rng, length, offset, offset + gap)
            if self.references:
                known = ~self.frontend.missing_frames(missing[i])
                nearest = nearest_offset(window, int(own_frames.sum()), self.shortest_window)
                found = find_references(self.recording(index), start, window, known, self.references, own_frames,
                                        min_offset=nearest)
                for r, ref in enumerate(found):
                    stretch = _as_float(track[channel, max(0, start + ref.offset) : start + ref.offset + length])
                    reference_audio[i, r, : len(stretch)] = stretch
                    if self.other_gaps_per_second:
                        reference_gaps[i, r] = self._other_gaps(rng, length, offset, offset + gap)
                        reference_audio[i, r, reference_gaps[i, r]] = 0.0
                    quality[i, r] = ref.quality
        damaged, missing_frames = self.frontend.analyse_with_gap(clean, missing)
        references = None
        if self.references:
            flat = self.frontend.log_mel(reference_audio.reshape(-1, length))
            if reference_gaps.any():  # drawn over as the engine draws over a reference's other gaps
                gap_frames = np.stack([self.frontend.missing_frames(m) for m in reference_gaps.reshape(-1, length)])
                flat = interpolate_missing(flat, gap_frames)
            references = flat.reshape(size, self.references, *flat.shape[1:])
        return self.frontend.log_mel(clean), damaged, missing_frames, references, quality

    def _gap_length(self, rng: np.random.Generator, low: int, high: int) -> int:
        if self.log_uniform:
            return round(math.exp(rng.uniform(math.log(low), math.log(high))))
        return int(rng.integers(low, high + 1))

    def _other_gaps(self, rng: np.random.Generator, length: int, own_start: int, own_end: int) -> np.ndarray:
        """A ``[length]`` mask of other gaps around ``own_start:own_end`` (see the class docstring);
        a gap may run over the window's ends."""
        mask = np.zeros(length, dtype=bool)
        apart = round(self.OTHER_GAP_DISTANCE_S * self.settings.sample_rate)
        taken = [(own_start, own_end)]
        for _ in range(rng.poisson(self.other_gaps_per_second * length / self.settings.sample_rate)):
            size = self._gap_length(rng, *self.other_gap_bounds)
            start = int(rng.integers(-size + 1, length))
            if all(start + size + apart <= lo or hi + apart <= start for lo, hi in taken):
                taken.append((start, start + size))
                mask[max(0, start) : start + size] = True
        return mask


def masked_l1(prediction: torch.Tensor, target: torch.Tensor, missing: torch.Tensor, per_window: bool = True) -> torch.Tensor:
    """Mean absolute error on the missing frames only (normalised log-Mel units).  ``per_window``
    averages each window first, so a short gap weighs as much as a long one; otherwise every
    missing value weighs the same (one mean over the whole batch), and long gaps dominate."""
    weight = missing[:, None, None, :].expand_as(prediction).float()
    error = weight * (prediction - target).abs()
    if not per_window:
        return error.sum() / weight.sum().clamp(min=1)
    return (error.sum(dim=(1, 2, 3)) / weight.sum(dim=(1, 2, 3)).clamp(min=1)).mean()


def texture_loss(prediction: torch.Tensor, target: torch.Tensor, interpolation: torch.Tensor, missing: torch.Tensor,
                 scales: tuple[int, ...] = (1, 2, 4)) -> torch.Tensor:
    """How far the fill's texture is from the truth's, on the missing frames of each window: per
    band, the mean absolute change from frame to frame, and per frame, from band to band, at
    several resolutions.  Unlike a per-value loss this does not ask *where* the detail goes, so it
    does not reward a blurred fill that hedges between possibilities.  ``prediction`` and
    ``target`` are corrections to ``interpolation`` (all ``[B, 1, n_mels, T]``, normalised)."""
    fill, truth = interpolation + prediction, interpolation + target
    weight = missing[:, None, None, :].float()
    total = prediction.new_zeros(())
    for scale in scales:
        if scale > 1:
            fill, truth = (torch.nn.functional.avg_pool2d(x, scale) for x in (fill, truth))
            weight = (torch.nn.functional.avg_pool2d(weight, (1, scale)) > 0.5).float()
        pairs = weight[..., 1:] * weight[..., :-1]
        if pairs.sum() == 0:
            break
        for axis, w in ((-1, pairs), (-2, weight)):
            stats = [((x.diff(dim=axis).abs() * w).sum(dim=-1) / w.sum(dim=-1).clamp(min=1)) for x in (fill, truth)]
            total = total + (stats[0] - stats[1]).abs().mean()
    return total / len(scales)


class Adversary:
    """A patch critic (``networks.PatchCritic``) trained beside the inpainter, least-squares GAN
    style: it learns to tell the true window from the window with the fill composed into its
    gap, and the inpainter is pushed towards fills it takes for true ones, and whose critic
    features match the truth's.  Only patches that touch the gap are scored, so the known
    context, which is the same in both, teaches it nothing.  Like the texture term, it asks for
    detail a blurred fill lacks without saying where each detail goes."""

    def __init__(self, config: TrainConfig, device: torch.device, distributed: bool):
        self.config = config
        self.critic = networks.PatchCritic().to(device)
        self.optimizer = torch.optim.Adam(self.critic.parameters(), lr=config.learning_rate, betas=(0.5, 0.9))
        self.judged = self.critic
        if distributed:
            self.judged = torch.nn.parallel.DistributedDataParallel(
                self.critic, device_ids=[device.index] if device.type == "cuda" else None)

    @staticmethod
    def _window(correction: torch.Tensor, target: torch.Tensor, interpolation: torch.Tensor, missing: torch.Tensor):
        """The critic's input: the window with ``correction`` on its missing frames, and the mask."""
        mask = missing[:, None, None, :].float().expand_as(target)
        return torch.cat([interpolation + mask * correction + (1 - mask) * target, mask], dim=1)

    @staticmethod
    def _masked_mean(values: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
        """Mean of ``values`` ``[B, C, F, T']`` over the columns that touch a missing frame."""
        stride = missing.shape[-1] // values.shape[-1]
        touched = torch.nn.functional.max_pool1d(missing[:, None].float(), stride)[:, None]  # [B, 1, 1, T']
        weight = touched.expand_as(values)
        return (values * weight).sum() / weight.sum().clamp(min=1)

    def critic_step(self, prediction, target, interpolation, missing) -> None:
        """One update of the critic on this batch (the fill detached)."""
        both = torch.cat([self._window(target, target, interpolation, missing),
                          self._window(prediction.detach(), target, interpolation, missing)])
        real, fake = self.judged(both)[0].chunk(2)
        loss = self._masked_mean((real - 1) ** 2, missing) + self._masked_mean(fake**2, missing)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()

    def inpainter_loss(self, prediction, target, interpolation, missing, step: int) -> torch.Tensor:
        """The adversarial and feature-matching terms for the inpainter (zero while the critic warms up)."""
        if step < self.config.critic_warmup:
            return prediction.new_zeros(())
        fake, fake_features = self.critic(self._window(prediction, target, interpolation, missing))
        with torch.no_grad():
            _, real_features = self.critic(self._window(target, target, interpolation, missing))
        matching = sum(self._masked_mean((f - r).abs(), missing) for f, r in zip(fake_features, real_features))
        return (self.config.adversarial_weight * self._masked_mean((fake - 1) ** 2, missing)
                + self.config.feature_matching_weight * matching / len(fake_features))

    def state_dict(self) -> dict:
        return {"critic": self.critic.state_dict(), "critic_optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.critic.load_state_dict(state["critic"])
        self.optimizer.load_state_dict(state["critic_optimizer"])


def stream(seed: int, *key: int) -> np.random.Generator:
    """The random stream of one draw of a run (``key``: the step, or the step and a window's place
    in its batch), independent of every other key's and of the order they are drawn in."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


@dataclass(frozen=True)
class Processes:
    """This process among those ``torchrun`` started (from its RANK, WORLD_SIZE and LOCAL_RANK);
    one process on its own otherwise."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_environment(cls, environ=os.environ) -> "Processes":
        if "WORLD_SIZE" not in environ:
            return cls()
        return cls(int(environ["RANK"]), int(environ["WORLD_SIZE"]), int(environ.get("LOCAL_RANK", 0)))

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        """The process that validates, saves and logs."""
        return self.rank == 0

    def device(self) -> torch.device:
        if not torch.cuda.is_available():
            return torch.device("cpu")
        return torch.device("cuda", self.local_rank) if self.distributed else torch.device("cuda")

    def start(self) -> None:
        """Join the others (torchrun's rendezvous): NCCL between GPUs, gloo between CPUs."""
        if self.distributed and not torch.distributed.is_initialized():
            if torch.cuda.is_available():
                torch.cuda.set_device(self.local_rank)
            torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")

    def finish(self) -> None:
        """Wait for the others: a process that tears its group down while another still uses it
        (the first one validates and saves last) can abort in gloo's teardown."""
        if self.distributed and torch.distributed.is_initialized():
            torch.distributed.barrier()

    def stop(self) -> None:
        if self.distributed and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


class StepBatches(torch.utils.data.Dataset):
    """This process's windows of each step's batch, as network tensors, indexed by step (so
    ``workers`` processes can draw them ahead of the model), and the share of the batch they are.

    The step's window length, and each window of its batch, come from streams keyed by the step
    (and the window's place in the batch), so the batch is the same however many processes draw
    its windows (process r draws places r, r + P, r + 2P, ...), in whichever worker, and a
    resumed run draws what the uninterrupted one would have."""

    def __init__(self, sampler: WindowSampler, config: TrainConfig, planes: int, processes: "Processes"):
        self.sampler, self.config, self.planes, self.processes = sampler, config, planes, processes

    def __len__(self) -> int:
        return self.config.steps

    def __getitem__(self, step: int):
        seed, windows, processes = self.config.seed, self.sampler.windows, self.processes
        window = windows[stream(seed, step).integers(len(windows))]
        size = max(1, self.config.batch_frames // window)
        places = range(processes.rank, size, processes.world_size)
        batch = self.sampler.draw(window, [stream(seed, step, place) for place in places])
        return (*_to_tensors(*batch, self.planes), len(places) * processes.world_size / size)


def _to_tensors(clean, damaged, missing, references, quality, planes: int):
    inputs, base, _, std = networks.prepare(damaged, missing, planes, references, quality)
    target = (clean - base) / std[:, None, None]  # the correction the network should predict
    return torch.from_numpy(inputs), torch.from_numpy(target[:, None].astype(np.float32)), torch.from_numpy(missing)


class Trainer:
    def __init__(self, config: TrainConfig, settings: MelSettings, train_tracks, validation_tracks, out_dir: Path, log=print,
                 processes: Processes = Processes(), names: tuple[list, list] | None = None):
        """``names``: the train and validation tracks' file names, to name those too short for a window."""
        self.config, self.settings, self.out_dir, self.log = config, settings, Path(out_dir), log
        self.processes = processes
        torch.manual_seed(config.seed)
        if config.threads:
            torch.set_num_threads(config.threads)
        self.device = processes.device()
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # one shape per window length: each is tuned once
        model_config = dict(config.model or {})
        model_config.setdefault("n_mels", settings.n_mels)
        self.model = networks.build(config.architecture, model_config).to(self.device)
        self.model_config = self.model.config
        self.planes = networks.input_planes(self.model_config)
        if config.init_from:
            states.load_widening_inputs(self.model, states.load_checkpoint(config.init_from).state_dict)
        windows = tuple(config.windows or networks.window_frames(config.architecture, self.model_config))
        unfit = [w for w in windows if not self.model.fits(w)]
        if unfit:
            raise ValueError(f"[training] windows {unfit} do not fit the {config.architecture}, whose windows are {self.model.window_rule}")
        for tracks, track_names in zip((train_tracks, validation_tracks), names or ()):
            for track, name in zip(tracks, track_names):
                if not long_enough(track, settings, windows):
                    seconds = settings.samples_for(max(windows)) / settings.sample_rate
                    log(f"skipped {name}: shorter than a {seconds:.1f} s window ({max(windows)} frames)")
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate)
        self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer, max_lr=config.learning_rate, total_steps=config.steps, pct_start=0.05
        )
        sampler_args = (settings, windows, config.context_frames, config.max_gap_seconds)
        options = {"gap_lengths": config.gap_lengths, "references": config.references,
                   "other_gaps_per_minute": config.other_gaps_per_minute}
        self.sampler = WindowSampler(train_tracks, *sampler_args, seed=config.seed, **options)
        self.windows = self.sampler.windows
        smallest = config.batch_frames // max(self.windows)
        if smallest < processes.world_size:
            raise ValueError(f"batch_frames = {config.batch_frames} makes batches of {smallest} windows of {max(self.windows)} frames,"
                             f" fewer than the {processes.world_size} processes: raise batch_frames")
        # What the processes train together; the model itself is validated and saved.
        self.trained = self.model
        if processes.distributed:
            self.trained = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.adversary = None
        if config.adversarial_weight or config.feature_matching_weight:
            self.adversary = Adversary(config, self.device, processes.distributed)
        # A fixed validation set, drawn once.
        validation = WindowSampler(validation_tracks, *sampler_args, seed=config.seed + 1, **options)
        self.validation = {w: validation.batch(w, config.validation_windows) for w in self.windows} if processes.main else {}
        self.step, self.best, self.history = 0, math.inf, []
        self.data = data_fingerprint(train_tracks, validation_tracks)

    def checkpoint(self, metrics: dict, with_optimizer: bool) -> dict:
        meta = states.ModelMeta(self.config.architecture, self.model_config, tuple(self.windows), self.config.max_gap_seconds,
                                self.settings, self.config.references, metrics)
        extra = {"train_config": self.config.__dict__, "history": self.history, "step": self.step, "data": self.data}
        if with_optimizer:
            extra.update(optimizer=self.optimizer.state_dict(), scheduler=self.scheduler.state_dict(), best=self.best)
            if self.adversary:
                extra.update(self.adversary.state_dict())
        return states.checkpoint_dict(meta, self.model, **extra)

    def resume(self, path: Path) -> None:
        """Continue the run saved in ``path``; ValueError if this run's config or analysis settings
        differ from those it was saved with (but for how it is run: ``RUN_KEYS``)."""
        checkpoint = states.load_checkpoint(path, weights_only=False)
        saved = {k: v for k, v in checkpoint.extra.get("train_config", {}).items() if k not in RUN_KEYS}
        changed = sorted(k for k, v in self.config.__dict__.items() if k in saved and saved[k] != v)
        if checkpoint.meta.settings != self.settings:
            changed.append("[mel]")
        if checkpoint.extra.get("data", self.data) != self.data:  # (a checkpoint without a fingerprint is not checked)
            changed.append("the training or validation data")
        if changed:
            raise ValueError(f"{path} was trained with other settings ({', '.join(changed)} "
                             f"{'differ' if len(changed) > 1 else 'differs'}): resume with its config and data, "
                             "or start a new run with another -o")
        self.model.load_state_dict(checkpoint.state_dict)
        state = checkpoint.extra
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.best, self.history = state["step"], state["best"], state["history"]
        if self.adversary:
            self.adversary.load_state_dict(state)
        self.log(f"resumed from {path} at step {self.step}")

    @torch.no_grad()
    def validate(self) -> dict:
        """Masked L1 (normalised log-Mel) of the model and of plain interpolation, per window length."""
        self.model.eval()
        metrics = {}
        per_window = self.config.loss_per_window
        for window, batch in self.validation.items():
            inputs, target, mask = _to_tensors(*batch, self.planes)
            prediction = self.model(inputs.to(self.device)).cpu()
            metrics[f"l1_{window}"] = masked_l1(prediction, target, mask, per_window).item()
            metrics[f"texture_{window}"] = texture_loss(prediction, target, inputs[:, :1], mask).item()
            metrics[f"interp_l1_{window}"] = masked_l1(torch.zeros_like(target), target, mask, per_window).item()
        for name in ("l1", "interp_l1", "texture"):  # each over the window lengths
            metrics[name] = float(np.mean([metrics[f"{name}_{w}"] for w in self.windows]))
        # The checkpoint is chosen on the training objective, not on L1 alone (which favours blur).
        metrics["loss"] = metrics["l1"] + self.config.texture_weight * metrics["texture"]
        self.model.train()
        return metrics

    def run(self, progress=None) -> dict:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.model.train()
        started = time.time()
        metrics = {}
        batches = torch.utils.data.DataLoader(
            StepBatches(self.sampler, self.config, self.planes, self.processes), batch_size=None,
            sampler=range(self.step, self.config.steps), num_workers=self.config.workers,
            pin_memory=self.device.type == "cuda", prefetch_factor=4 if self.config.workers else None)
        for inputs, target, mask, share in batches:
            inputs, target, mask = (x.to(self.device, non_blocking=True) for x in (inputs, target, mask))
            prediction = self.trained(inputs)
            loss = masked_l1(prediction, target, mask, self.config.loss_per_window)
            if self.config.texture_weight:
                loss = loss + self.config.texture_weight * texture_loss(prediction, target, inputs[:, :1], mask)
            if self.adversary:
                self.adversary.critic_step(prediction, target, inputs[:, :1], mask)
                loss = loss + self.adversary.inpainter_loss(prediction, target, inputs[:, :1], mask, self.step)
            self.optimizer.zero_grad()
            # DistributedDataParallel averages the processes' gradients: weighed by its share of
            # the windows, each process's mean makes that average the whole batch's mean (exactly
            # so for the per-window loss, the default).
            (loss * share).backward()
            self.optimizer.step()
            self.scheduler.step()
            self.step += 1
            if progress:
                progress(self.step, loss.item())
            out_of_time = self._out_of_time(started)
            if not self.processes.main:
                if out_of_time:
                    break
                continue
            if self.step % self.config.validate_every == 0 or self.step == self.config.steps or out_of_time:
                metrics = self.validate()
                metrics["elapsed_s"] = round(time.time() - started, 1)
                self.history.append({"step": self.step, **metrics})
                improved = metrics["loss"] < self.best
                if improved:
                    self.best = metrics["loss"]
                    _save(self.checkpoint(metrics, with_optimizer=False), self.out_dir / "best.pt")
                _save(self.checkpoint(metrics, with_optimizer=True), self.out_dir / "last.pt")
                self.log(
                    f"step {self.step}: validation L1 {metrics['l1']:.4f} (interpolation {metrics['interp_l1']:.4f}),"
                    f" texture {metrics['texture']:.4f}"
                    + (" best" if improved else "")
                )
            if out_of_time:
                self.log(f"stopped after {self.config.max_minutes:g} minutes, at step {self.step} of {self.config.steps}")
                break
        return metrics

    def _out_of_time(self, started: float) -> bool:
        """Whether ``max_minutes`` have passed; under torchrun the first process's clock decides for all."""
        over = bool(self.config.max_minutes) and time.time() - started > 60 * self.config.max_minutes
        if self.processes.distributed and self.config.max_minutes:
            flag = torch.tensor([float(over)], device=self.device)
            torch.distributed.broadcast(flag, src=0)
            over = bool(flag.item())
        return over


def data_fingerprint(train_tracks, validation_tracks) -> str:
    """What the run learns from, in short: each track's shape and a sum of every 9973rd sample, in
    the order of either split (the sampler draws tracks by their place), whatever the files are
    named or where they are kept."""
    def track_id(track) -> list:
        samples = np.asarray(track)
        return [list(samples.shape), float(samples.reshape(-1)[::9973].astype(np.float64).sum())]

    return digest({"train": list(map(track_id, train_tracks)), "validation": list(map(track_id, validation_tracks))})


def train(config: dict, dataset, out_dir: Path, resume: bool = False, log=print, progress_factory=None) -> dict | None:
    """Train from a parsed config (``[mel]``, ``[model]``, ``[training]``) on a data set object.

    Under ``torchrun``, every process calls this; the first logs, shows the progress, saves the
    checkpoints and returns the last validation metrics, the others return None."""
    processes = Processes.from_environment()
    if not processes.main:
        log, progress_factory = (lambda line: None), None
    processes.start()
    try:
        metrics = _train(config, dataset, out_dir, resume, log, progress_factory, processes)
        processes.finish()
        return metrics
    finally:
        processes.stop()


def _train(config: dict, dataset, out_dir: Path, resume: bool, log, progress_factory, processes: Processes) -> dict | None:
    settings, train_config = read_config(config)
    for line in dataset.problems:
        log(f"data: {line}")
    splits = {split: dataset.files(split) for split in ("train", "validation")}
    log(f"data: {len(splits['train'])} training files, {len(splits['validation'])} validation files")
    if not splits["train"] or not splits["validation"]:
        raise ValueError("need at least one training and one validation file")
    problems: list[str] = []
    read_files = {split: [] for split in splits}  # progress gets each file read, in the order of the tracks
    tracks = {split: load_tracks(files, settings, problems, progress=read_files[split].append) for split, files in splits.items()}
    for line in problems:
        log(f"skipped {line}")
    for split, loaded in tracks.items():
        if not loaded:
            raise ValueError(f"none of the {len(splits[split])} {split} files could be read (see the lines above)")
    trainer = Trainer(train_config, settings, tracks["train"], tracks["validation"], out_dir, log=log, processes=processes,
                      names=(read_files["train"], read_files["validation"]))
    if processes.distributed:
        log(f"training in {processes.world_size} processes ({torch.distributed.get_backend()}, {trainer.device.type})")
    if resume and (Path(out_dir) / "last.pt").exists():
        trainer.resume(Path(out_dir) / "last.pt")
    elif resume:
        log(f"no {Path(out_dir) / 'last.pt'} to resume from: starting afresh")
    if trainer.step >= trainer.config.steps:  # resumed a finished run: its last validation, nothing trained
        log(f"the run in {out_dir} is finished (step {trainer.step} of {trainer.config.steps}): nothing to train")
        last = trainer.history[-1] if trainer.history else {}
        return {k: v for k, v in last.items() if k != "step"} if processes.main else None
    progress = progress_factory(trainer.config.steps, trainer.step) if progress_factory else None
    try:
        metrics = trainer.run(progress)
    finally:
        if progress:
            progress.close()
    return metrics if processes.main else None
