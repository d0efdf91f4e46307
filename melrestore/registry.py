"""Finds plugins through the ``melrestore`` entry point group and keeps what they register.

Built-in plugins are entry points of the melrestore distribution itself, so they
load exactly like third-party ones, first: a third-party plugin can add objects but
never take a built-in's name (its clash is reported as its own failure).  A plugin
registers all of its objects or none.  ``MELRESTORE_PLUGINS`` (comma-separated
entry point or distribution names) restricts which ones load; the test suite
sets it so that whatever else is installed stays out.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from importlib import metadata

import pluggy

from . import contracts, hookspecs
from .config import fits_type, type_in_words

ENTRY_POINT_GROUP = "melrestore"
ENV_VAR = "MELRESTORE_PLUGINS"
BUILTIN_DISTRIBUTION = "melrestore"


@dataclass(frozen=True)
class PluginKind:
    """One kind of plugin object: its key (``plugins --json``, ``Registry.build``), the hook that
    registers it, what one is called in messages, and the contract each must keep."""

    key: str
    hook: str
    singular: str
    contract: type

    def __str__(self) -> str:
        return self.singular


GAP_DETECTORS = PluginKind("gap_detectors", "register_gap_detectors", "gap detector", contracts.GapDetector)
MEL_FRONTENDS = PluginKind("mel_frontends", "register_mel_frontends", "mel frontend", contracts.MelAnalysis)
INPAINTERS = PluginKind("inpainters", "register_inpainters", "inpainter", contracts.Inpainter)
VOCODERS = PluginKind("vocoders", "register_vocoders", "vocoder", contracts.Vocoder)
SAMPLE_REPAIRERS = PluginKind("sample_repairers", "register_sample_repairers", "sample repairer", contracts.SampleRepairer)
DATASETS = PluginKind("datasets", "register_datasets", "dataset", contracts.Dataset)
KINDS = {kind.key: kind for kind in (GAP_DETECTORS, MEL_FRONTENDS, INPAINTERS, VOCODERS, SAMPLE_REPAIRERS, DATASETS)}


def kind_of(kind: str | PluginKind) -> PluginKind:
    """The kind itself, given it or its key."""
    return kind if isinstance(kind, PluginKind) else KINDS[kind]


class PluginError(Exception):
    """A plugin asked for by name is unknown or could not be built."""


class ContractError(PluginError):
    """A plugin object that lacks a method or attribute of its kind's contract: the plugin's fault."""


@dataclass
class PluginInfo:
    name: str
    module: str
    distribution: str | None
    version: str | None
    hooks: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class Registered:
    factory: object
    plugin: str


class Registry:
    """Loads the plugins once and answers "give me the X called N"."""

    def __init__(self, allowed: str | None = None):
        self.pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self._items: dict[PluginKind, dict[str, Registered]] = {kind: {} for kind in KINDS.values()}
        allowed = os.environ.get(ENV_VAR) if allowed is None else allowed
        self._allowed = {n.strip() for n in allowed.split(",") if n.strip()} if allowed else None
        # The built-ins first, then the others in a fixed order: which plugin keeps a clashing
        # name never depends on the order the environment lists distributions in.
        for entry_point in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=_load_order):
            self._load(entry_point)

    def _load(self, entry_point) -> None:
        dist = entry_point.dist
        info = PluginInfo(
            name=entry_point.name,
            module=entry_point.value,
            distribution=dist.name if dist else None,
            version=dist.version if dist else None,
        )
        if self._allowed is not None and not ({info.name, info.distribution} & self._allowed):
            return
        if any(p.name == info.name for p in self.plugins):  # entry point names are unique within a distribution only
            info.name = f"{info.distribution}:{info.name}"
        self.plugins.append(info)
        try:
            module = entry_point.load()
            self.add(module, info)
        except Exception as exc:  # a broken plugin must not take the others down
            info.error = f"{type(exc).__name__}: {exc}"

    def add(self, module, info: PluginInfo) -> None:
        """Register a loaded plugin module and collect what its hooks register: all of it, or
        (PluginError, the module unregistered) nothing, when a name is taken already."""
        self.pm.register(module, name=info.name)
        try:
            info.hooks = sorted(h.name for h in self.pm.get_hookcallers(module))
            # Each plugin's hooks are called through the plugin manager on their own, so that what
            # they register is known to be theirs, and one that raises fails alone.
            others = [plugin for plugin in self.pm.get_plugins() if plugin is not module]
            staged: dict[PluginKind, dict[str, object]] = {kind: {} for kind in KINDS.values()}
            for kind in KINDS.values():
                if kind.hook in info.hooks:
                    self.pm.subset_hook_caller(kind.hook, remove_plugins=others)(register=_registrar(kind, staged[kind]))
            for kind, items in staged.items():
                taken = sorted(items.keys() & self._items[kind].keys())
                if taken:
                    owner = self._items[kind][taken[0]].plugin
                    raise PluginError(f"{kind} {taken[0]!r} is already registered by plugin {owner!r}")
        except BaseException:
            self.pm.unregister(module)
            raise
        for kind, items in staged.items():
            self._items[kind].update({name: Registered(factory, info.name) for name, factory in items.items()})

    def names(self, kind: str | PluginKind) -> list[str]:
        return sorted(self._items[kind_of(kind)])

    def check(self, kind: str | PluginKind, name: str) -> None:
        """Raise PluginError, listing what exists, unless ``name`` is registered for ``kind``."""
        kind = kind_of(kind)
        if name not in self._items[kind]:
            known = ", ".join(self.names(kind)) or "none"
            raise PluginError(f"no {kind} named {name!r} (available: {known})")

    def find(self, name: str) -> list[PluginKind]:
        """The kinds that have a plugin object named ``name``; PluginError if none has."""
        kinds = [kind for kind, items in self._items.items() if name in items]
        if not kinds:
            raise PluginError(f"no plugin object is named {name!r} (see `melrestore plugins`)")
        return kinds

    def _parameters(self, kind: PluginKind, name: str):
        """The parameters of the factory registered as ``name`` for ``kind``, or None for a factory
        without a signature."""
        try:
            return inspect.signature(self._items[kind][name].factory).parameters
        except (TypeError, ValueError):
            return None

    def defaults(self, name: str) -> dict:
        """The keyword arguments the factory of the plugin object ``name`` takes, with their
        defaults (of its first kind; none for a factory without a signature)."""
        params = self._parameters(self.find(name)[0], name) or {}
        return {key: p.default for key, p in params.items() if p.default is not p.empty}

    def check_options(self, kind: str | PluginKind, name: str, options: dict) -> None:
        """Raise PluginError unless ``name`` exists and ``options`` fit its factory's keyword
        arguments: names it takes, and values of the type of each argument's default."""
        kind = kind_of(kind)
        self.check(kind, name)
        label = f"{kind} {name!r}"
        params = self._parameters(kind, name)
        if params is None:  # a factory without a signature: nothing to check against
            return
        takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
        for key, value in options.items():
            param = params.get(key)
            if param is None:
                if takes_any:
                    continue
                accepted = ", ".join(n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)) or "none"
                raise PluginError(f"{label} has no option {key!r} (its options: {accepted})")
            default = param.default
            if default is param.empty:
                continue
            if default is None:  # "x: int | None = None": the annotation says what else it takes
                expected, like = _annotated_type(param.annotation), " (or nothing)"
                if expected is None:
                    continue
            else:
                expected, like = type(default), f" (like {default!r})"
            if not fits_type(value, expected):
                raise PluginError(f"option {key!r} of {label} takes {type_in_words(expected)}{like}, not {value!r}")

    def build(self, kind: str | PluginKind, name: str, **options):
        """Build the plugin object registered under ``name``, checked against its kind's contract."""
        kind = kind_of(kind)
        self.check_options(kind, name, options)
        item = self._items[kind][name]
        try:
            built = item.factory(**options)
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(f"{kind} {name!r} failed to start: {exc}") from exc
        lacking = contracts.missing_members(built, kind.contract)
        if lacking:
            raise ContractError(f"{kind} {name!r} (plugin {item.plugin!r}) breaks the {kind} contract: "
                              f"it has no {', '.join(lacking)} (see melrestore.contracts.{kind.contract.__name__})")
        return built

    def describe(self) -> list[dict]:
        """Everything `melrestore plugins` shows."""
        rows = []
        for info in self.plugins:
            provides = {
                kind.key: sorted(n for n, item in items.items() if item.plugin == info.name)
                for kind, items in self._items.items()
            }
            rows.append(
                {
                    "name": info.name,
                    "module": info.module,
                    "distribution": info.distribution,
                    "version": info.version,
                    "hooks": info.hooks,
                    "provides": {k: v for k, v in provides.items() if v},
                    "error": info.error,
                }
            )
        return rows


def _load_order(entry_point) -> tuple:
    dist = entry_point.dist.name if entry_point.dist else ""
    return dist != BUILTIN_DISTRIBUTION, dist, entry_point.name


def _registrar(kind: PluginKind, staged: dict[str, object]):
    """The ``register(name, factory)`` callback a plugin's hook for ``kind`` is given."""
    def register(name: str, factory) -> None:
        if name in staged:
            raise PluginError(f"{kind} {name!r} is registered twice by the same plugin")
        staged[name] = factory

    return register


_SIMPLE_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def _annotated_type(annotation) -> type | None:
    """The one simple type (int, float, str, bool) an ``X | None`` annotation names, else None."""
    if annotation is inspect.Parameter.empty:
        return None
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    names = {part.strip() for part in str(text).replace("Optional[", "").replace("]", "").split("|")} - {"None", "NoneType"}
    return _SIMPLE_TYPES.get(names.pop()) if len(names) == 1 else None


_registry: Registry | None = None


def get_registry() -> Registry:
    global _registry
    if _registry is None:
        _registry = Registry()
    return _registry
