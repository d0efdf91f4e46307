"""The non-learned inpainter: straight lines across the gap in log-Mel."""

from melrestore import hookimpl
from melrestore.interpolate import interpolate_missing


class Interpolation:
    settings = None  # analyses with whatever front end is selected
    window_frames = None  # any window length
    max_gap_seconds = None

    def __init__(self, edge_frames: int = 2):
        self.edge_frames = edge_frames

    def inpaint(self, log_mel, missing):
        return interpolate_missing(log_mel, missing, self.edge_frames)


@hookimpl
def register_inpainters(register):
    register("interpolation", Interpolation)
