"""melrestore: repair dropouts in music recordings."""

from .hookspecs import hookimpl

__version__ = "0.2.0"

__all__ = ["DetectionError", "Gap", "MelFrontend", "MelSettings", "hookimpl", "__version__"]

# Loaded on first use (numpy, torch), so that `melrestore --help` starts at once.
_LAZY = {"DetectionError": "gaps", "Gap": "gaps", "MelFrontend": "mel", "MelSettings": "analysis"}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'melrestore' has no attribute {name!r}")
