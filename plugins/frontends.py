"""Built-in Mel front ends (analysis settings)."""

from melrestore import hookimpl
from melrestore.analysis import MelSettings


@hookimpl
def register_mel_frontends(register):
    # The usual rate of music files: nothing above 11 kHz is lost inside the gap.
    register("music-44k", lambda: MelSettings(sample_rate=44100))
    # The seed's settings (and CAL500's band-limited MP3s).
    register("seed-22k", lambda: MelSettings(sample_rate=22050))
