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
    """Register gap detectors (``melrestore.contracts.GapDetector``): the engine runs each one the
    pipeline names on every file and repairs the union of the gaps they find."""


@hookspec
def register_mel_frontends(register):
    """Register Mel front ends, named analysis settings (``melrestore.contracts.MelAnalysis``): the
    engine analyses and inverts windows with the chosen one, unless the inpainter brings its own."""


@hookspec
def register_inpainters(register):
    """Register Mel inpainters (``melrestore.contracts.Inpainter``, or ``RetrievingInpainter`` to be
    handed retrieved stretches of the recording): the Mel pipeline fills each window's missing
    frames with the chosen one."""


@hookspec
def register_vocoders(register):
    """Register vocoders (``melrestore.contracts.Vocoder``, or ``ReferencingVocoder`` to be handed the
    best-matching stretch): the Mel pipeline turns each filled window back into the gap's samples
    with the chosen one."""


@hookspec
def register_sample_repairers(register):
    """Register waveform repair methods (``melrestore.contracts.SampleRepairer``): the engine tries the
    pipeline's ``short_gap_repairer`` on gaps up to ``short_gap_ms`` and its ``long_gap_repairer`` on
    gaps from ``long_gap_ms`` before the Mel pipeline."""


@hookspec
def register_datasets(register):
    """Register training data sets (``melrestore.contracts.Dataset``): ``melrestore train --dataset NAME``
    trains on the chosen one's train files and validates on its validation files."""
