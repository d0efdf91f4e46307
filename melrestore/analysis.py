"""Analysis settings and window sizes, without torch: plugin listing and the command line load
this module; ``melrestore.mel`` (which needs torch) does the analysis itself."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


# How far from a gap (seconds, each way) the similarity search and the retrieval look for a matching
# stretch: a whole song from anywhere in it, and a bounded cost per gap in a recording of hours (a
# concert, a tape side), where the cost of looking everywhere would grow with the length.
SEARCH_RADIUS_S = 300.0
# The longest gap (seconds) a pipeline fills, and training draws, unless configured otherwise:
# longer gaps are reported and left alone.
MAX_GAP_SECONDS = 3.0
# The shortest gap training draws (its windows' gaps run from this to the longest they hold).
MIN_TRAINING_GAP_S = 0.01
# The first and last this many ms of a Mel fill fade from an autoregressive continuation of the music
# on each side (a pipeline's default edge_extrapolation_ms): chosen on the validation tracks (README,
# "Short gaps: where LSAR stops").
EDGE_EXTRAPOLATION_MS = 10.0
# Seconds each side of a gap whose music the similarity search matches.  Chosen by the copy's ViSQOL
# and LSD on the validation and development tracks (see the README): half a second finds better
# repeats than one (the music next to the gap says most about what is missing); 0.25 to 0.5 s are level.
SEARCH_CONTEXT_S = 0.5


@dataclass(frozen=True)
class MelSettings:
    """Analysis settings.  Frames are centred: frame t sits on sample t * hop_length."""

    sample_rate: int = 44100
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    f_min: float = 0.0
    f_max: float | None = None
    mel_scale: str = "slaney"
    log_floor: float = 1e-5

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "MelSettings":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def frames_for(self, n_samples: int) -> int:
        return 1 + n_samples // self.hop_length

    def samples_for(self, n_frames: int) -> int:
        return (n_frames - 1) * self.hop_length

    def hops_in(self, seconds: float) -> int:
        """How many hops (at least one) make ``seconds``: a duration on the frame grid."""
        return max(1, round(seconds * self.sample_rate / self.hop_length))

    @property
    def frame_reach(self) -> int:
        """Samples a frame's window reaches from its centre (half an FFT), rounded up to whole hops:
        what a block of frames must carry on each side to equal one pass over the recording."""
        return -(-self.n_fft // 2 // self.hop_length) * self.hop_length

    def frames_touching(self, start: int, end: int) -> tuple[int, int]:
        """The frames ``first:stop`` whose analysis window overlaps samples ``start:end`` (not
        clipped to the recording)."""
        return (start - self.n_fft // 2) // self.hop_length + 1, -(-(end + self.n_fft // 2) // self.hop_length)

    def missing_frames_for(self, gap_samples: int) -> int:
        """How many frames a gap of ``gap_samples`` touches at most (every frame whose window overlaps it)."""
        return math.ceil((gap_samples + self.n_fft) / self.hop_length) + 1


# Multiplicative updates of the non-negative least-squares Mel inverse (MelFrontend.magnitude);
# on music the linear-magnitude error settles within ten; thirty lowered the fill's LSD a little more.
NNLS_ITERATIONS = 30

# Known frames a window keeps each side of a gap, at least.
MIN_CONTEXT_FRAMES = 16
# Known context a window gives each side of a gap, as a share of the gap's own frames, wherever a
# window that long exists.  Measured on held-out music: the shipped U-Net fills a 1 s gap better in a
# 256-frame window (83 known frames each side) than in a 128-frame one (19 each side).
CONTEXT_PER_GAP = 0.5


def window_for_gap(missing_frames: int, sizes, min_context: int) -> int | None:
    """The window length (frames, one of ``sizes``, ascending) for a gap touching ``missing_frames``:
    the smallest with at least ``CONTEXT_PER_GAP`` of the gap (and ``min_context`` frames) known on
    each side; failing that, the smallest with ``min_context`` each side; None if none holds the gap."""
    preferred = missing_frames + 2 * max(min_context, math.ceil(CONTEXT_PER_GAP * missing_frames))
    needed = missing_frames + 2 * min_context
    for wanted in (preferred, needed):
        for size in sizes:
            if size >= wanted:
                return size
    return None


# FFT lengths of known samples a vocoder's crop keeps each side of the gap.  Only frames that touch
# the gap change, so more context changed nothing measurable (three: within the noise of the seed).
CROP_CONTEXT_FFTS = 1
