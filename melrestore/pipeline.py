"""Choosing the plugins of a repair pipeline by name and building the engine from them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .engine import Engine
from .registry import get_registry

DEFAULT_INPAINTER = "unet-onnx"


@dataclass
class PipelineOptions:
    """What ``[pipeline]`` in a config file and the CLI flags select."""

    inpainter: str = DEFAULT_INPAINTER
    vocoder: str = "griffin-lim"
    detectors: list[str] = field(default_factory=lambda: ["digital-silence", "labels"])
    frontend: str = "music-44k"
    max_gap_seconds: float = 3.0
    # Gaps up to short_gap_ms go to a waveform method (LSAR recovers the waveform of short gaps);
    # 0 turns it off.  Gaps from long_gap_ms up first try to copy a matching stretch of the same
    # recording (music repeats), and fall back to the Mel pipeline when none matches; 0 turns it off.
    short_gap_repairer: str = "lsar"
    short_gap_ms: float = 20.0
    long_gap_repairer: str = "similarity"
    long_gap_ms: float = 150.0
    # Per-plugin keyword arguments, by plugin name, e.g. {"digital-silence": {"min_ms": 5}}.
    options: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: dict, **overrides) -> "PipelineOptions":
        data = dict(config.get("pipeline", {}))
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown [pipeline] keys: {', '.join(sorted(unknown))}")
        for key, value in data.items():
            _check_type(key, value, cls.__dataclass_fields__[key].default)
        data.update({k: v for k, v in overrides.items() if v not in (None, ())})
        if "detectors" in data:
            data["detectors"] = list(data["detectors"])
        options = cls(**data)
        options.check_ranges()
        return options

    def check_ranges(self) -> None:
        """Raise ValueError for lengths that cannot mean anything."""
        if not self.max_gap_seconds > 0:
            raise ValueError(f"max_gap_seconds must be above 0, not {self.max_gap_seconds}")
        for key in ("short_gap_ms", "long_gap_ms"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key} must be 0 (off) or more, not {getattr(self, key)}")

    def to_dict(self) -> dict:
        return asdict(self)


def _check_type(key: str, value, default) -> None:
    """Raise ValueError unless a [pipeline] value has the type of the key's default."""
    if key == "detectors":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"[pipeline] detectors takes a list of names like [\"digital-silence\"], not {value!r}")
    elif key == "options":
        if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
            raise ValueError("[pipeline] options takes one table per plugin, like [pipeline.options.griffin-lim]")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"[pipeline] {key} takes a number, not {value!r}")
    elif not isinstance(value, type(default)):
        raise ValueError(f"[pipeline] {key} takes a {type(default).__name__}, not {value!r}")


def build_engine(options: PipelineOptions) -> Engine:
    registry = get_registry()

    def build(kind: str, name: str):
        return registry.build(kind, name, **options.options.get(name, {}))

    return Engine(
        inpainter=build("inpainters", options.inpainter),
        vocoder=build("vocoders", options.vocoder),
        settings=build("mel_frontends", options.frontend),
        detectors=[build("gap_detectors", name) for name in options.detectors],
        max_gap_seconds=options.max_gap_seconds,
        short_gap_repairer=build("sample_repairers", options.short_gap_repairer) if options.short_gap_ms > 0 else None,
        short_gap_ms=options.short_gap_ms,
        long_gap_repairer=build("sample_repairers", options.long_gap_repairer) if options.long_gap_ms > 0 else None,
        long_gap_ms=options.long_gap_ms if options.long_gap_ms > 0 else float("inf"),
    )
