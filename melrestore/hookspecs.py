"""The hooks a melrestore plugin can implement.

Every hook hands the plugin a ``register`` callback.  A plugin calls
``register(name, factory)`` once per thing it offers; the core later picks one
by name (from the command line or a config file) and calls ``factory(**options)``
to build it.  A class is a fine factory.  Names are lowercase with hyphens.

Conventions shared by all hooks:

* Audio is a float32 NumPy array shaped ``[channels, samples]`` in [-1, 1].
* Sample positions are integers; a span ``(start, end)`` is half-open.
* A log-Mel window is ``[batch, n_mels, frames]`` of natural-log Mel magnitudes
  at the analysis settings of the front end in use (see ``MelSettings``).

A minimal plugin module::

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
    """Register gap detectors.

    A detector has ``detect(audio, sample_rate, path) -> list[Gap]``:
    ``audio`` is ``[channels, samples]`` float32 at the file's own rate (in
    ``batch``, a file read on demand: slice it, ``audio[:, a:b]``, a block at a
    time; ``np.asarray(audio)`` reads it whole), ``path`` the file (for sidecar
    files; may be None).  Each ``Gap`` holds
    ``start``/``end`` in samples of that file and a human ``reason``.
    Raise ``melrestore.DetectionError`` for a bad sidecar file.
    """


@hookspec
def register_mel_frontends(register):
    """Register Mel front ends: named analysis settings.

    The factory returns a ``melrestore.MelSettings`` (rate, n_fft, hop,
    n_mels, Mel scale and log floor).  The engine builds a
    ``melrestore.MelFrontend`` from it, which turns waveforms into log-Mel
    windows and back into linear STFT magnitudes.  A learned inpainter's own
    settings (from its checkpoint) take precedence over the chosen front end.
    """


@hookspec
def register_inpainters(register):
    """Register Mel inpainters.

    An inpainter has:

    * ``inpaint(log_mel, missing) -> log_mel``: ``log_mel`` is
      ``[batch, n_mels, frames]`` float32, ``missing`` is ``[batch, frames]``
      bool (True where the frame overlaps a gap).  The window is analysed with
      the gap's samples zeroed, so a missing frame that only partly overlaps
      the gap still shows the known part.  Return the same shape with the
      missing frames filled; known frames are ignored by the engine.
    * ``settings``: a ``MelSettings`` it must analyse at, or None to use the
      selected front end.
    * ``window_frames``: the window lengths (in frames, ascending) it accepts,
      or None for any length.
    * ``max_gap_seconds``: the longest gap it can fill.
    * ``references`` (optional, default 0): how many stretches of the same
      recording it wants retrieved per window.  When it is k > 0 the engine's
      retrieval stage (``melrestore.retrieval``) finds the k stretches whose
      known frames best match the window's, cuts and analyses them exactly like
      the window, and calls ``inpaint(log_mel, missing, references=...,
      quality=...)`` with ``references`` ``[batch, k, n_mels, frames]`` aligned
      to the window and ``quality`` ``[batch, k]`` (1 = identical context, 0 =
      no stretch found: that reference is all zeros).  Inpainters without the
      attribute are called as before.
    """


@hookspec
def register_vocoders(register):
    """Register vocoders that turn a filled Mel window back into samples.

    A vocoder has ``vocode(log_mel, segment, missing, frontend) -> segment``:
    ``log_mel`` is ``[channels, n_mels, frames]`` (the inpainted window),
    ``segment`` the matching ``[channels, samples]`` audio at the analysis
    rate with the missing samples set to zero, ``missing`` a ``[samples]``
    bool mask, ``frontend`` the ``MelFrontend`` that made the window (frame
    ``t`` is centred on sample ``t * hop_length``).  Return a float32 array
    of the segment's shape whose missing samples are filled; the engine only
    takes those.  The fill should meet the known samples without a jump.
    """


@hookspec
def register_sample_repairers(register):
    """Register repair methods that work on the samples directly (no Mel window).

    The engine uses the selected one for gaps up to ``short_gap_ms``, where
    waveform methods beat spectrogram ones.  A repairer has
    ``repair(audio, start, end, sample_rate) -> fill``: ``audio`` is
    ``[channels, samples]`` at the file's rate with every gap zeroed (read on
    demand in ``batch``: slice only what you need), the gap is ``start:end``,
    and ``fill`` is ``[channels, end - start]``.  Raise
    ``ValueError`` when it cannot (for example too little audio around the
    gap); the engine then falls back to the Mel pipeline.
    """


@hookspec
def register_datasets(register):
    """Register training data sets.

    The factory is called as ``factory(root)`` and returns an object with
    ``files(split) -> list[pathlib.Path]`` for ``split`` in ``"train"`` and
    ``"validation"`` (a deterministic split), plus ``problems``: a list of
    human-readable lines about what it skipped.
    """
