"""The hooks a melrestore plugin can implement.

Every hook hands the plugin a ``register`` callback.  A plugin calls
``register(name, factory)`` once per thing it offers; the core later picks one
by name (from the command line or a config file) and calls ``factory(**options)``
to build it.  A class is a fine factory.  Names are lowercase with hyphens.

What the built object must offer is its kind's contract, a ``typing.Protocol``
class in ``melrestore.contracts`` (named in each hook below); the registry checks
every object it builds against it, and ``melrestore.testing`` (or
``melrestore check-plugin NAME``) runs the rest of the contract on real signals.

The shape of a plugin module (a skeleton: a vocoder that leaves its gaps silent keeps the
signature, not the contract, and ``check_vocoder`` fails it; the README's "Writing a plugin" has
a complete one, ``Mirror``, that passes)::

    from melrestore import hookimpl

    class Silence:
        def vocode(self, log_mel, segment, missing, frontend):
            out = segment.copy()
            out[:, missing] = 0.0
            return out

    @hookimpl
    def register_vocoders(register):
        register("silence", Silence)

and in its ``pyproject.toml``::

    [project.entry-points.melrestore]
    silence = "my_package.my_module"
"""

import pluggy

hookspec = pluggy.HookspecMarker("melrestore")
hookimpl = pluggy.HookimplMarker("melrestore")


@hookspec
def register_gap_detectors(register):
    """Register gap detectors: objects with ``detect(audio, sample_rate, path) -> list[Gap]``
    (``melrestore.contracts.GapDetector``).  A ``Gap`` missing in some channels only names them
    (``channels``, 0-based); only those are then replaced.  In ``batch`` and ``repair``, ``audio`` is a
    file read on demand, not an array: slice it (``audio[:, a:b]`` gives one) a block at a time;
    ``np.asarray(audio)`` reads it whole.  Anything but ``Gap`` objects fails the file, naming the
    detector; gaps past the file's end are cut to it."""


@hookspec
def register_mel_frontends(register):
    """Register Mel front ends: named analysis settings.  The factory returns a
    ``melrestore.MelSettings`` (``melrestore.contracts.MelAnalysis``), from which the engine builds
    the ``MelFrontend`` that analyses windows and inverts them.  A learned inpainter's own settings
    (from its model file) take precedence over the chosen front end."""


@hookspec
def register_inpainters(register):
    """Register Mel inpainters: objects with ``inpaint(log_mel, missing)``, ``settings``,
    ``window_frames`` and ``max_gap_seconds`` (``melrestore.contracts.Inpainter``); one that also
    has ``references = k`` is handed k retrieved stretches of the same recording per window
    (``melrestore.contracts.RetrievingInpainter``)."""


@hookspec
def register_vocoders(register):
    """Register vocoders that turn a filled Mel window back into samples: objects with
    ``vocode(log_mel, segment, missing, frontend)`` (``melrestore.contracts.Vocoder``); one that
    also has ``reference_min_quality`` is handed the recording's best-matching stretch, aligned to
    the segment, when the match is that good (``melrestore.contracts.ReferencingVocoder``)."""


@hookspec
def register_sample_repairers(register):
    """Register repair methods that work on the samples directly (no Mel window): objects with
    ``repair(audio, start, end, sample_rate) -> fill`` (``melrestore.contracts.SampleRepairer``).
    The engine gives them the gaps up to ``short_gap_ms`` and from ``long_gap_ms``; one that
    declines (ValueError) leaves the gap to the Mel pipeline; any other exception, or a fill of the
    wrong shape or with NaN, fails the gap.  In ``batch`` and ``repair``, ``audio`` is read on demand,
    not an array: slice only what you need (``audio[:, a:b]`` gives an array)."""


@hookspec
def register_datasets(register):
    """Register training data sets: the factory is called as ``factory(root=DIR)`` (and with
    ``validation_percent=`` when the training config sets it) and returns an object with
    ``files(split)`` and ``problems`` (``melrestore.contracts.Dataset``)."""
