"""melrestore: repair dropouts in music recordings."""

from .gaps import DetectionError, Gap
from .hookspecs import hookimpl
from .mel import MelFrontend, MelSettings

__version__ = "0.1.0"

__all__ = ["DetectionError", "Gap", "MelFrontend", "MelSettings", "hookimpl", "__version__"]
