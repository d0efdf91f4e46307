"""The plugin contracts: what the object each hook registers must offer, as ``typing.Protocol`` classes.

One class per plugin kind.  ``hookspecs.py`` documents the hooks by pointing here, the registry
checks every object it builds against its kind's class (a missing method or attribute is a clear
error, not an AttributeError in the middle of a batch), and ``melrestore.testing`` runs the rules
that a signature cannot say (shapes, finite values, no jump at the gap's edges) on real signals.

Conventions shared by all of them: audio is a float32 NumPy array ``[channels, samples]`` in
[-1, 1]; sample positions are integers and a span ``(start, end)`` is half-open; a log-Mel window
is ``[batch, n_mels, frames]`` of natural-log Mel magnitudes at the analysis settings in use.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:  # numpy and the Mel classes stay unimported until a plugin is actually used
    import numpy as np

    from .gaps import Gap
    from .mel import MelFrontend, MelSettings


@runtime_checkable
class GapDetector(Protocol):
    """Finds the gaps of a file (``register_gap_detectors``)."""

    def detect(self, audio: np.ndarray, sample_rate: int, path: Path | None) -> list[Gap]:
        """``audio`` ``[channels, samples]`` at the file's own rate (an array, or in ``batch`` and
        ``repair`` a file read on demand that ``audio[:, a:b]`` slices into one, a block at a time;
        ``np.asarray(audio)`` reads it whole), ``path`` the file (for sidecar files; may be None)
        -> the gaps, in samples of that file, each with a human ``reason``; a gap missing in some
        channels only names them (``channels``, 0-based), and only those are then replaced.
        Anything but ``Gap`` objects fails the file, naming the detector; gaps past the file's end
        are cut to it.  Must not change ``audio``; raises ``melrestore.DetectionError`` for a bad
        sidecar file."""


@runtime_checkable
class MelAnalysis(Protocol):
    """Analysis settings (``register_mel_frontends``): the factory returns a ``melrestore.MelSettings``,
    from which the engine builds the ``MelFrontend`` that analyses windows and inverts them.
    Frame ``t`` is centred on sample ``t * hop_length``; bands are of the STFT magnitude, logged
    as ``ln(mel + log_floor)``."""

    sample_rate: int  # Hz
    n_fft: int  # samples
    hop_length: int  # samples
    n_mels: int
    f_min: float  # Hz
    f_max: float | None  # Hz, None for half the rate
    mel_scale: str  # "slaney" or "htk"
    log_floor: float

    def frames_for(self, n_samples: int) -> int: ...

    def samples_for(self, n_frames: int) -> int: ...

    def missing_frames_for(self, gap_samples: int) -> int: ...


@runtime_checkable
class Inpainter(Protocol):
    """Fills the missing frames of log-Mel windows (``register_inpainters``)."""

    settings: MelSettings | None  # the analysis it must run at, or None for the selected front end's
    window_frames: tuple[int, ...] | None  # window lengths (frames, ascending) it accepts, None for any
    max_gap_seconds: float | None  # the longest gap it can fill, None for no limit of its own

    def inpaint(self, log_mel: np.ndarray, missing: np.ndarray) -> np.ndarray:
        """``log_mel`` ``[batch, n_mels, frames]`` float32, analysed with the gap's samples zeroed (a
        frame that only partly overlaps the gap still shows the known part), ``missing``
        ``[batch, frames]`` bool -> the same shape with the missing frames filled (the known frames
        of the result are not used)."""


@runtime_checkable
class RetrievingInpainter(Inpainter, Protocol):
    """An inpainter that also looks at stretches of the same recording (an optional extension).

    With ``references = k > 0`` the engine's retrieval stage (``melrestore.retrieval``) finds the
    k stretches whose known frames best match the window's, cuts and analyses them exactly like
    the window, and calls ``inpaint(log_mel, missing, references=..., quality=...)``:
    ``references`` ``[batch, k, n_mels, frames]`` aligned to the window, ``quality`` ``[batch, k]``
    (1 = identical context, 0 = no stretch found, and that reference is all zeros)."""

    references: int

    def inpaint(self, log_mel: np.ndarray, missing: np.ndarray, references: np.ndarray | None = None,
                quality: np.ndarray | None = None) -> np.ndarray: ...


def references_wanted(inpainter: Inpainter) -> int:
    """How many retrieved stretches the engine hands ``inpainter`` per window (0 for a plain one)."""
    return int(inpainter.references) if isinstance(inpainter, RetrievingInpainter) else 0


@runtime_checkable
class Vocoder(Protocol):
    """Turns a filled log-Mel window back into samples (``register_vocoders``)."""

    def vocode(self, log_mel: np.ndarray, segment: np.ndarray, missing: np.ndarray, frontend: MelFrontend) -> np.ndarray:
        """``log_mel`` ``[channels, n_mels, frames]`` (the inpainted window), ``segment`` the matching
        ``[channels, samples]`` at the analysis rate with the missing samples zeroed, ``missing`` a
        ``[samples]`` bool mask, ``frontend`` the ``MelFrontend`` that made the window -> float32 of
        the segment's shape whose missing samples are filled, meeting the known ones without a jump
        (only those are used).  Raises ValueError, with a message, on bad input."""


@runtime_checkable
class ReferencingVocoder(Vocoder, Protocol):
    """A vocoder that also takes the stretch of the same recording that best matches the gap's
    surroundings (an optional extension).

    When the retrieval stage's best match has a quality (as ``RetrievingInpainter`` sees it) of at
    least ``reference_min_quality``, the engine cuts that stretch exactly as the segment was cut,
    aligned to the sample by the known samples either side of the gap, and calls
    ``vocode(log_mel, segment, missing, frontend, reference=...)``: ``reference`` ``[channels,
    samples]``, the segment's shape, clean where the segment is missing (it may hold zeroed gaps
    elsewhere).  Otherwise ``vocode`` is called as a plain vocoder is."""

    reference_min_quality: float

    def vocode(self, log_mel: np.ndarray, segment: np.ndarray, missing: np.ndarray, frontend: MelFrontend,
               reference: np.ndarray | None = None) -> np.ndarray: ...


def reference_min_quality(vocoder: Vocoder) -> float | None:
    """The match quality from which the engine hands ``vocoder`` a reference; None for never (a
    plain vocoder, or one asking for more than 1, an identical match)."""
    if not isinstance(vocoder, ReferencingVocoder) or vocoder.reference_min_quality > 1:
        return None
    return float(vocoder.reference_min_quality)


@runtime_checkable
class SampleRepairer(Protocol):
    """Fills a gap on the waveform directly, no Mel window (``register_sample_repairers``)."""

    def repair(self, audio: np.ndarray, start: int, end: int, sample_rate: int) -> np.ndarray:
        """``audio`` ``[channels, samples]`` of the whole file with every gap zeroed (an array, or in
        ``batch`` and ``repair`` a file read on demand that ``audio[:, a:b]`` slices into one), the gap
        ``start:end`` -> the fill ``[channels, end - start]``.  Raises ValueError to decline (too
        little audio around the gap, no close match): the Mel pipeline then takes the gap.  Any other
        exception, or a fill of another shape or with NaN, fails the gap."""


@runtime_checkable
class Dataset(Protocol):
    """Training data (``register_datasets``); the factory is called as ``factory(root=DIR)``, with
    ``validation_percent=`` too when the training config sets it."""

    problems: list[str]  # human-readable lines about what it skipped

    def files(self, split: str) -> list[Path]:
        """The audio files of ``split`` (``"train"`` or ``"validation"``), split deterministically."""


def members(contract: type) -> list[str]:
    """The attributes and methods ``contract`` asks for, its bases' first."""
    names: list[str] = []
    for base in reversed(contract.__mro__):
        if getattr(base, "_is_protocol", False) and base is not Protocol:
            names += [n for n in (*vars(base).get("__annotations__", {}), *vars(base)) if not n.startswith("_") and n not in names]
    return names


def missing_members(obj, contract: type) -> list[str]:
    """What ``obj`` lacks of ``contract``: absent attributes, and methods that cannot be called."""
    return [name for name in members(contract)
            if not hasattr(obj, name) or (callable(getattr(contract, name, None)) and not callable(getattr(obj, name)))]
