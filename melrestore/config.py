"""TOML configuration files (see configs/)."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(Exception):
    pass


SECTIONS = {"pipeline", "mel", "model", "training"}


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
