"""The model file: the metadata training writes, export copies and the learned inpainter reads.

A checkpoint (``.pt``, written by ``melrestore train``) is one flat dictionary: the fields of
:class:`ModelMeta` (``format`` naming the kind and version first), the network's weights as
``state_dict``, and what training keeps for itself (its config, history, step; ``last.pt`` also
the optimizer).  An ONNX export carries the same :class:`ModelMeta` as JSON in the model's
``melrestore`` metadata property.  A file of another kind, or of a version this melrestore does
not read, is refused with a one-line :class:`ModelFileError`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .mel import MelSettings
from .networks import ARCHITECTURES, build, input_planes

FORMAT = "melrestore-checkpoint"
VERSION = 1  # the version this melrestore writes and reads
ONNX_KEY = "melrestore"  # the ONNX metadata property holding the JSON


class ModelFileError(ValueError):
    """A model file of another kind or version, or no model file at all."""


@dataclass(frozen=True)
class ModelMeta:
    """What a model file says about its network: enough to run it as the engine runs it."""

    architecture: str  # a key of ``networks.ARCHITECTURES``
    model_config: dict  # the network's constructor arguments
    window_frames: tuple[int, ...]  # window lengths (frames, ascending) it was trained at
    max_gap_seconds: float  # the longest gap it was trained on
    settings: MelSettings  # the analysis it was trained at
    references: int = 0  # retrieved stretches it takes per window (two input planes each)
    metrics: dict = field(default_factory=dict)  # validation scores of the saved step

    @property
    def planes(self) -> int:
        """Input planes of the network."""
        return input_planes(self.model_config)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["window_frames"] = list(self.window_frames)
        data["mel_settings"] = data.pop("settings")
        return {"format": f"{FORMAT}-{VERSION}", **data}

    @classmethod
    def from_dict(cls, data, source) -> "ModelMeta":
        """The metadata of a model file's dictionary; ModelFileError naming ``source`` for a file of
        another kind or version."""
        kind, _, version = str(data.get("format", "") if isinstance(data, dict) else "").rpartition("-")
        if kind != FORMAT:
            raise ModelFileError(f"{source} is not a melrestore checkpoint (a model file written by `melrestore train`)")
        if version != str(VERSION):
            raise ModelFileError(f"{source} is a melrestore model file of version {version}; this melrestore reads version {VERSION}")
        try:
            if data["architecture"] not in ARCHITECTURES:
                raise ModelFileError(f"{source} holds a {data['architecture']!r} network; this melrestore knows {', '.join(ARCHITECTURES)}")
            return cls(
                architecture=data["architecture"],
                model_config=dict(data["model_config"]),
                window_frames=tuple(data["window_frames"]),
                max_gap_seconds=data["max_gap_seconds"],
                settings=MelSettings.from_dict(data["mel_settings"]),
                references=int(data.get("references", 0)),  # a file without the key takes no references
                metrics=dict(data.get("metrics", {})),
            )
        except KeyError as exc:
            raise ModelFileError(f"{source} is a melrestore model file without its {exc.args[0]!r}: damaged, or not written by melrestore") from None


@dataclass
class Checkpoint:
    """A checkpoint as read back: its metadata, the network's weights, and the rest of the file
    (training's own keys)."""

    meta: ModelMeta
    state_dict: dict
    extra: dict
    source: str = "the checkpoint"  # the file, for messages

    def model(self) -> nn.Module:
        """The network, weights loaded, in evaluation mode; ModelFileError when the weights do not
        fit the network that ``model_config`` describes."""
        try:
            model = build(self.meta.architecture, self.meta.model_config)
            model.load_state_dict(self.state_dict)
        except (TypeError, RuntimeError) as exc:  # torch lists every tensor that does not fit: name the first
            detail = next((line.strip() for line in str(exc).splitlines()[1:] if line.strip()), str(exc))
            raise ModelFileError(f"{self.source}: its weights do not fit the network its model_config describes ({detail})") from None
        return model.eval()


def checkpoint_dict(meta: ModelMeta, model: nn.Module, **extra) -> dict:
    """What ``torch.save`` writes for a checkpoint: the metadata, ``extra`` keys, the weights (on the CPU)."""
    return {**meta.to_dict(), **extra, "state_dict": {k: v.cpu() for k, v in model.state_dict().items()}}


def load_checkpoint(path, weights_only: bool = True) -> Checkpoint:
    """A checkpoint written by ``melrestore train``.  ``weights_only`` (the default) reads tensors and
    plain values only; training's own ``last.pt`` (optimizer, generator state) needs False."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception:  # torch's own message is a page of advice about weights_only
        raise ModelFileError(f"{path} is not a melrestore checkpoint (a model file written by `melrestore train`)") from None
    meta = ModelMeta.from_dict(data, path)
    if "state_dict" not in data:
        raise ModelFileError(f"{path} is a melrestore checkpoint without its weights ('state_dict')")
    extra = {k: v for k, v in data.items() if k not in meta.to_dict() and k != "state_dict"}
    return Checkpoint(meta, data["state_dict"], extra, str(path))


def write_onnx_meta(proto, meta: ModelMeta) -> None:
    """Store ``meta`` in an ONNX model (``onnx.ModelProto``) as it is saved."""
    proto.metadata_props.add(key=ONNX_KEY, value=json.dumps(meta.to_dict()))


def read_onnx_meta(path) -> ModelMeta:
    """The metadata of an ONNX file written by ``melrestore export-onnx``."""
    import onnx

    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    if ONNX_KEY not in props:
        raise ModelFileError(f"{path} carries no melrestore metadata (export it with `melrestore export-onnx`)")
    data = json.loads(props[ONNX_KEY])
    data.setdefault("format", f"{FORMAT}-1")  # a file without it (such as the shipped fc-44k.onnx) is of version 1
    return ModelMeta.from_dict(data, path)


def load_widening_inputs(model: nn.Module, state_dict: dict) -> None:
    """Load weights from a model with fewer input planes: the new planes' weights start at zero,
    so the loaded model computes exactly what it did before (fine-tuning then learns to use them)."""
    own = model.state_dict()
    widened = {}
    for name, weights in state_dict.items():
        if weights.shape != own[name].shape and weights.shape[0] == own[name].shape[0] and weights.dim() > 1:
            grown = torch.zeros_like(own[name])
            grown[:, : weights.shape[1]] = weights
            weights = grown
        widened[name] = weights
    model.load_state_dict(widened)

