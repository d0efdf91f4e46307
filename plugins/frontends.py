"""Built-in Mel front ends (analysis settings)."""

from melrestore import hookimpl
from melrestore.analysis import MelSettings


@hookimpl
def register_mel_frontends(register):
    # The usual rate of music files: nothing above 11 kHz is lost inside the gap.
    register("music-44k", lambda: MelSettings(sample_rate=44100))
    # 22,050 Hz, nothing above 11 kHz analysed: for band-limited sources such as CAL500's 32 kbps MP3s.
    register("seed-22k", lambda: MelSettings(sample_rate=22050))
