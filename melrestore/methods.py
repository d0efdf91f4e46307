"""The engine's methods for a gap (``Plan.method``, ``GapResult.method`` and the reports' ``method``),
and what each means in words.  Imports nothing: the command line describes gaps with it before
anything heavy loads."""

from __future__ import annotations

SHORT_GAP = "short-gap"  # the short-gap sample repairer, on the waveform
LONG_GAP = "long-gap"  # the long-gap sample repairer first (it may decline: then the Mel pipeline)
MEL = "mel"  # the Mel pipeline: inpainter, then vocoder
OTHER_CHANNELS = "other-channels"  # predicted from the channels that still play (else the Mel pipeline)
SKIPPED = "skipped"  # no method takes the gap (a plan's, and a skipped gap's result)

FILLING = (SHORT_GAP, LONG_GAP, MEL, OTHER_CHANNELS)  # the methods a filled gap reports


def describe(method: str, options=None, repaired: bool = True) -> str:
    """What fills a gap by ``method``: with a pipeline's ``options`` (``PipelineOptions``) the
    plugins by name, without them in general words.  Not yet ``repaired`` (found), a method that
    falls back to the Mel pipeline names that too.  Any other method is given back as it is."""
    mel = f"{options.inpainter} + {options.vocoder}" if options else "the Mel inpainter and vocoder"
    if method == MEL:
        return mel
    if method == SHORT_GAP:
        return options.short_gap_repairer if options else "the short-gap repairer"
    if method == LONG_GAP:
        first = options.long_gap_repairer if options else "the long-gap repairer"
    elif method == OTHER_CHANNELS:
        first = "the other channels"
    else:
        return method
    return first if repaired else f"{first}, else {mel}"
