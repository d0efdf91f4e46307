"""TOML configuration files (see configs/)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(Exception):
    pass


def digest(value) -> str:
    """A short, stable digest of a JSON-able ``value`` (dicts by sorted keys): what a later run
    compares to tell whether the settings, a shard's inputs or a training run's data are the same."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


SECTIONS = {"pipeline", "mel", "model", "training"}


def check_keys(section: str, data: dict, valid) -> None:
    """Raise ValueError naming the keys of ``data`` that table ``[section]`` does not take, and those it does."""
    unknown = set(data) - set(valid)
    if unknown:
        raise ValueError(f"unknown [{section}] keys: {', '.join(sorted(unknown))} (it takes {', '.join(sorted(valid))})")


def fits_type(value, expected: type) -> bool:
    """Whether ``value`` is an ``expected``: an int is a float too, a bool is no number."""
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, expected) and (expected is bool or not isinstance(value, bool))


def type_in_words(expected: type) -> str:
    """``a number`` (a float or an int), ``an int``, ``a str``, ...: what a key or option takes."""
    if expected is float:
        return "a number"
    name = expected.__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def check_type(section: str, key: str, value, expected: type) -> None:
    """Raise ValueError unless ``value`` of ``[section] key`` is an ``expected`` (see ``fits_type``)."""
    if not fits_type(value, expected):
        raise ValueError(f"[{section}] {key} takes {type_in_words(expected)}, not {value!r}")


def load_config(path: str | Path | None) -> dict:
    """Read a config file into ``{section: {key: value}}``; unknown sections are an error."""
    if path is None:
        return {}
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    unknown = set(data) - SECTIONS
    if unknown:
        raise ConfigError(f"{path}: unknown sections {', '.join(sorted(unknown))} (expected {', '.join(sorted(SECTIONS))})")
    return data
