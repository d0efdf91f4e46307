"""The slots of a repair pipeline (one table), the options that fill them, and building the engine.

Light to import (the command line builds its flags from ``SLOTS`` before anything heavy loads):
the engine is imported only when one is built.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from .analysis import EDGE_EXTRAPOLATION_MS, MAX_GAP_SECONDS
from . import __version__
from .config import check_keys, check_type, digest
from .registry import GAP_DETECTORS, INPAINTERS, MEL_FRONTENDS, SAMPLE_REPAIRERS, VOCODERS, PluginError, PluginKind, get_registry

if TYPE_CHECKING:
    from .engine import Engine


@dataclass(frozen=True)
class Slot:
    """A place in the pipeline that a plugin (or, for ``many``, a list of them) fills, chosen by name
    under ``option`` in ``[pipeline]`` and, with a ``flag``, on the command line."""

    option: str  # the [pipeline] key and PipelineOptions field
    kind: PluginKind
    default: str | tuple[str, ...]
    help: str
    flag: str | None = None  # the command-line flag; None: set in a config only
    many: bool = False  # a list of plugins (the flag is repeated)
    off_when_zero: str | None = None  # the length option whose 0 leaves the slot empty

    @property
    def default_text(self) -> str:
        return ", ".join(self.default) if self.many else self.default


# Every plugin a pipeline uses: the CLI flags, the config check and build_engine all read this.
SLOTS = (
    Slot("inpainter", INPAINTERS, "unet-onnx", "Inpainter plugin", flag="--inpainter"),
    Slot("vocoder", VOCODERS, "griffin-lim", "Vocoder plugin", flag="--vocoder"),
    Slot("detectors", GAP_DETECTORS, ("digital-silence", "labels"), "Gap detector plugin; repeat for several",
         flag="--detector", many=True),
    Slot("frontend", MEL_FRONTENDS, "music-44k", "Mel front end for inpainters without their own settings", flag="--frontend"),
    Slot("short_gap_repairer", SAMPLE_REPAIRERS, "lsar", "Waveform method for gaps up to short_gap_ms", off_when_zero="short_gap_ms"),
    Slot("long_gap_repairer", SAMPLE_REPAIRERS, "similarity", "Waveform method tried first on gaps from long_gap_ms",
         off_when_zero="long_gap_ms"),
)
SLOT = {slot.option: slot for slot in SLOTS}


@dataclass
class PipelineOptions:
    """What ``[pipeline]`` in a config file and the CLI flags select (plugin defaults from ``SLOTS``)."""

    inpainter: str = SLOT["inpainter"].default
    vocoder: str = SLOT["vocoder"].default
    detectors: list[str] = field(default_factory=lambda: list(SLOT["detectors"].default))
    frontend: str = SLOT["frontend"].default
    max_gap_seconds: float = MAX_GAP_SECONDS
    # Gaps up to short_gap_ms go to a waveform method (LSAR recovers the waveform of short gaps);
    # 0 turns it off.  Gaps from long_gap_ms up first try to copy a matching stretch of the same
    # recording (music repeats), and fall back to the Mel pipeline when none matches; 0 turns it off.
    short_gap_repairer: str = SLOT["short_gap_repairer"].default
    short_gap_ms: float = 20.0
    long_gap_repairer: str = SLOT["long_gap_repairer"].default
    long_gap_ms: float = 30.0
    # Extrapolated edges of each Mel fill (EDGE_EXTRAPOLATION_MS); 0 leaves the vocoder's fill alone.
    edge_extrapolation_ms: float = EDGE_EXTRAPOLATION_MS
    # Per-plugin keyword arguments, by plugin name, e.g. {"digital-silence": {"min_ms": 5}}.
    options: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: dict, **overrides) -> "PipelineOptions":
        data = dict(config.get("pipeline", {}))
        check_keys("pipeline", data, cls.__dataclass_fields__)
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
        for key in ("short_gap_ms", "long_gap_ms", "edge_extrapolation_ms"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key} must be 0 (off) or more, not {getattr(self, key)}")

    def to_dict(self) -> dict:
        return asdict(self)

    def fingerprint(self) -> str:
        """A short digest of what these settings do: a rerun keeps only the outputs made the same way.
        A plugin option at its default counts as unset (a config that lists the defaults changes
        nothing), and the melrestore version counts (a release may find or fill gaps otherwise)."""
        registry = get_registry()
        options = {}
        for name, values in self.options.items():
            defaults = registry.defaults(name)
            changed = {key: value for key, value in values.items() if key not in defaults or defaults[key] != value}
            if changed:
                options[name] = changed
        return digest({**self.to_dict(), "options": options, "melrestore": __version__})

    def in_use(self, slot: Slot) -> bool:
        """Whether ``slot`` is part of this pipeline (its switch, if it has one, is not 0)."""
        return slot.off_when_zero is None or getattr(self, slot.off_when_zero) > 0

    def plugins(self) -> list[tuple[Slot, str]]:
        """Every plugin this pipeline uses, with its slot, in the order of ``SLOTS``."""
        chosen = []
        for slot in SLOTS:
            if self.in_use(slot):
                value = getattr(self, slot.option)
                chosen += [(slot, name) for name in (value if slot.many else [value])]
        return chosen

    def check_plugins(self) -> None:
        """Raise PluginError for a plugin name that does not exist, options that do not fit it, or
        options for a plugin no kind has."""
        registry = get_registry()
        used = set()
        for slot, name in self.plugins():
            registry.check_options(slot.kind, name, self.options.get(name, {}))
            used.add(name)
        for name, options in self.options.items():
            if name in used:
                continue
            # Options for a plugin this run does not use (kept for another): checked all the same,
            # against each kind of object of that name, so that a typo shows now, not later.
            errors = []
            for kind in registry.find(name):
                try:
                    registry.check_options(kind, name, options)
                    break
                except PluginError as exc:
                    errors.append(exc)
            else:
                raise errors[0]


def _check_type(key: str, value, default) -> None:
    """Raise ValueError unless a [pipeline] value has the type of the key's default."""
    if key == "detectors":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"[pipeline] detectors takes a list of names like [\"digital-silence\"], not {value!r}")
        if not value:
            raise ValueError("[pipeline] detectors is empty: no gap would ever be found (the default is [\"digital-silence\", \"labels\"])")
    elif key == "options":
        if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
            raise ValueError("[pipeline] options takes one table per plugin, like [pipeline.options.griffin-lim]")
    else:
        check_type("pipeline", key, value, type(default))


def build_engine(options: PipelineOptions, engine_class: type[Engine] | None = None) -> Engine:
    """The engine (an ``Engine``, or ``engine_class``, one with a stage swapped) with every slot's
    plugin built (an empty slot is None)."""
    from .engine import Engine

    engine_class = engine_class or Engine
    registry = get_registry()
    built: dict[str, object] = {slot.option: [] if slot.many else None for slot in SLOTS}
    for slot, name in options.plugins():
        plugin = registry.build(slot.kind, name, **options.options.get(name, {}))
        if slot.many:
            built[slot.option].append(plugin)
        else:
            built[slot.option] = plugin
    return engine_class(
        inpainter=built["inpainter"],
        vocoder=built["vocoder"],
        settings=built["frontend"],
        detectors=built["detectors"],
        max_gap_seconds=options.max_gap_seconds,
        short_gap_repairer=built["short_gap_repairer"],
        short_gap_ms=options.short_gap_ms,
        long_gap_repairer=built["long_gap_repairer"],
        long_gap_ms=options.long_gap_ms,  # 0 leaves the slot empty: the engine then tries it on no gap
        edge_extrapolation_ms=options.edge_extrapolation_ms,
    )
