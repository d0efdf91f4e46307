"""Built-in gap detectors: digital dropouts, and regions marked in label files."""

from __future__ import annotations

import errno
import functools
import json
from pathlib import Path

import numpy as np
import soundfile as sf

from melrestore import hookimpl
from melrestore import audio as audio_io
from melrestore.gaps import DetectionError, Gap, every_channel_row, row_runs_in_blocks, silent_rows
from melrestore.wording import plural


LSB_16 = 1 / 32768  # one step of 16-bit audio, in float samples
# A lossy encoder smears a little of the music into a dropout's edges, fainter than SMEAR_LSB
# 16-bit steps and at most SMEAR_MS long: a dropout found in a lossy file is widened over it.
SMEAR_LSB, SMEAR_MS = 32.0, 40.0
# An MP3's dropout with ``mp3_smear_ms``: its core under one 16-bit step.
MP3_FLOOR_LSB = 1.0
# A-law has no zero: digital silence decodes to its smallest magnitude, 8 16-bit steps.
ALAW_FLOOR_LSB = 8.0
# Sparse sound, not dropouts: a channel's silences, at least SPARSE_RUNS in a row with sounds of
# SPARSE_HIT_S or less between them, that fill at least SPARSE_SHARE of their stretch: a click
# track's silences between its clicks, or short hits in digital silence.  Music cut that often
# keeps longer stretches between the cuts.
SPARSE_RUNS, SPARSE_SHARE, SPARSE_HIT_S = 8, 0.75, 0.03
# A pause the music fades out into and in from is no dropout, however loud its edges: on each side
# the music falls towards the silence, its last FADE_TAIL_MS (peak) at least FADE_TAIL_DB under the
# edge's RMS and its last FADE_NEAR_MS at least FADE_DEPTH_DB under the music FADE_FAR_MS away.
# A dropout cuts the music off at its own level, and music that happens to die away into one
# side of a dropout hardly ever does so on the other side as well.
FADE_TAIL_MS, FADE_TAIL_DB = 1.0, 3.0
FADE_NEAR_MS, FADE_FAR_MS, FADE_DEPTH_DB = 5.0, (100.0, 400.0), 15.0
# At 8 bits, quiet music under half a step (-48 dBFS) is stored as runs of zeros: in such a file a
# dropout lasts at least EIGHT_BIT_MIN_MS and its edges are louder than one step.
EIGHT_BIT_ENCODINGS, EIGHT_BIT_MIN_MS, EIGHT_BIT_STEP = {"PCM_U8", "PCM_S8"}, 20.0, 2.0 ** -7


class DigitalSilence:
    """Runs of (near-)zero samples inside otherwise sounding audio: in every channel, or in some
    channels while the others sound (a dropout of those channels, which is filled in them only).

    A dropout cuts sound off: the ``edge_ms`` of audio on both sides of the run must be louder
    than ``min_level_db`` (RMS, dBFS; for a run in some channels, in those channels).  So leading
    and trailing silence, a pause that the music fades into (or, however loud its edges, out of and
    back in from: ``FADE_*``), and quiet music that is not digital zero are never gaps.
    ``tolerance_lsb`` is in steps of 16-bit audio (0 = exact zeros); in an A-law file, which has no
    zero, its digital silence (``ALAW_FLOOR_LSB``) counts as zero.  The default minimum is 2 ms: real
    dropouts can be that short, and the level check keeps false alarms out; in an 8-bit file it is
    longer (``EIGHT_BIT_*``).

    In an MP3 or Ogg file (by the format libsndfile reads at ``path``) a dropout made before
    encoding has the encoder's faint smear at its edges: a dropout found there is widened over it
    (``SMEAR_LSB``, ``SMEAR_MS``), which changes no decision.  In an MP3 the smear also hides many
    dropouts' edges from the level check: ``mp3_smear_ms`` (off by default) counts samples under
    ``MP3_FLOOR_LSB`` as silent and widens each run silent in every channel that far at most,
    before the level check.  It then finds nearly all of them, but also takes some gated pauses of
    electronic music for dropouts: it is for MP3s known to hold such dropouts.

    Why -60 dBFS, and what the default and ``mp3_smear_ms`` find and miss on the training and
    validation tracks: README, "What counts as a gap".
    """

    def __init__(self, min_ms: float = 2.0, tolerance_lsb: float = 0.0, min_level_db: float = -60.0, edge_ms: float = 20.0,
                 mp3_smear_ms: float = 0.0, block_samples: int | None = None):
        if min_ms <= 0 or edge_ms <= 0:
            raise ValueError(f"min_ms and edge_ms must be above 0 (got {min_ms:g} and {edge_ms:g})")
        if tolerance_lsb < 0 or mp3_smear_ms < 0:
            raise ValueError(f"tolerance_lsb and mp3_smear_ms must be 0 or more (got {tolerance_lsb:g} and {mp3_smear_ms:g})")
        self.min_ms = min_ms
        self.mp3_smear_ms = mp3_smear_ms
        self.tolerance = tolerance_lsb * LSB_16
        self.min_level = 10 ** (min_level_db / 20)
        self.edge_ms = edge_ms
        self.block_samples = block_samples  # read at a time (default audio.BLOCK_SAMPLES): a long file is never held whole

    def detect(self, audio, sample_rate, path=None):
        def ms(value: float) -> int:  # samples
            return round(value * sample_rate / 1000)

        container, encoding = _format_of(path)
        min_ms, min_level = self.min_ms, self.min_level
        if encoding in EIGHT_BIT_ENCODINGS:
            min_ms, min_level = max(min_ms, EIGHT_BIT_MIN_MS), max(min_level, EIGHT_BIT_STEP)
        min_len, edge = max(1, ms(min_ms)), max(1, ms(self.edge_ms))
        channels, n = audio.shape[0], audio.shape[1]
        every_row = every_channel_row(channels)
        everywhere, some = [], []  # long enough, inside the file: silent in every channel; in one channel
        mp3_rule = self.mp3_smear_ms > 0 and container == "MP3"
        floor = MP3_FLOOR_LSB if mp3_rule else ALAW_FLOOR_LSB if encoding == "ALAW" else 0.0
        rows_of = functools.partial(silent_rows, tolerance=max(self.tolerance, floor * LSB_16))
        for row, start, end in row_runs_in_blocks(audio, rows_of, self.block_samples or audio_io.BLOCK_SAMPLES, min_len):
            if start > 0 and end < n and end - start >= min_len:
                (everywhere if row == every_row else some).append((row, start, end))

        def widened(start, end, smear_ms):  # over the encoder's faint smear, which belongs to the dropout
            return _through_faint(audio, start, end, ms(smear_ms), SMEAR_LSB * LSB_16)

        if mp3_rule:
            everywhere = [(row, *widened(start, end, self.mp3_smear_ms)) for row, start, end in everywhere]
            everywhere = [(row, start, end) for row, start, end in everywhere if start > 0 and end < n]
        starts, ends = np.array([s for _, s, _ in everywhere], dtype=np.int64), np.array([e for _, _, e in everywhere], dtype=np.int64)

        def level(lo: int, hi: int, rows) -> float:
            """The RMS of ``lo:hi``, the samples of other runs silent everywhere left out: a dropout
            a sample or two from another is cut off from the music of those samples alone."""
            lo, hi = max(0, lo), max(0, hi)  # (a span before the file's start is empty, not read from its end)
            block = audio[:, lo:hi][rows]
            inside = range(np.searchsorted(ends, lo, side="right"), np.searchsorted(starts, hi))
            if len(inside):
                music = np.ones(block.shape[1], dtype=bool)
                for i in inside:
                    music[max(starts[i], lo) - lo : min(ends[i], hi) - lo] = False
                block = block[:, music]
            return _rms(block)

        def fades_into(at: int, after: bool, rows) -> bool:
            """Whether the music fades into a silence that begins (``after``) or ends at sample ``at``."""
            def music(lo_ms: float, hi_ms: float) -> tuple[int, int]:  # lo_ms..hi_ms away from the silence
                return (at - ms(hi_ms), at - ms(lo_ms)) if after else (at + ms(lo_ms), at + ms(hi_ms))

            lo, hi = (max(0, i) for i in music(0, FADE_TAIL_MS))
            tail = audio[:, lo:hi][rows]
            tail_peak = float(np.abs(tail).max()) if tail.size else 0.0
            if tail_peak > level(*music(0, self.edge_ms), rows) * 10 ** (-FADE_TAIL_DB / 20):
                return False  # cut off at full level: the music farther out need not be read
            return level(*music(0, FADE_NEAR_MS), rows) <= level(*music(*FADE_FAR_MS), rows) * 10 ** (-FADE_DEPTH_DB / 20)

        def faded_pause(start: int, end: int, rows) -> bool:
            # A lossy encoder smears a dropout's edges into ramps as a fade's (tens of dB over tens of
            # ms): in an MP3 or Ogg file the rule would take dropouts for pauses, so it is not used.
            lossy = container in audio_io.LOSSY_FORMATS
            return not lossy and fades_into(start, True, rows) and fades_into(end, False, rows)

        def cut_off(start, end, rows=slice(None)) -> bool:
            edges = min(level(start - edge, start, rows), level(end, end + edge, rows))
            return edges >= min_level and not faded_pause(start, end, rows)

        gaps = [Gap(start, end, "digital silence") for _, start, end in everywhere if cut_off(start, end)]
        if container in audio_io.LOSSY_FORMATS:  # (with the default level, a found dropout's edge stops it inside the file)
            spans = [widened(g.start, g.end, SMEAR_MS) for g in gaps]
            gaps = [Gap(start, end, g.reason) if start > 0 and end < n else g for g, (start, end) in zip(gaps, spans)]
        # A channel's run of zeros is a dropout of that channel where it is cut off from that
        # channel's music on both sides; the stretches of it silent in every channel too (an
        # ordinary dropout's, or one the other channels joined later) are the runs above, so the
        # channel's gap is the rest, where it is long enough (a sample of music that happens to
        # be zero beside a dropout is no gap).  Those runs are sorted and apart.
        for c, start, end in some:
            if not cut_off(start, end, slice(c, c + 1)):
                continue
            inside = range(np.searchsorted(ends, start, side="right"), np.searchsorted(starts, end))
            edges = [start, *(edge for i in inside for edge in (starts[i], ends[i])), end]
            gaps += [Gap(int(a), int(b), f"digital silence in channel {c + 1}", (c,))
                     for a, b in zip(edges[::2], edges[1::2]) if b - a >= min_len]
        # Each channel's own silences (all of them, wherever the others are silent too) tell its sparse sound.
        silences = {c: [(s, e) for r, s, e in some if r == c] for c in range(channels)} if channels > 1 else \
            {0: [(s, e) for _, s, e in everywhere]}
        sparse = {c: _sparse_spans(runs, round(SPARSE_HIT_S * sample_rate)) for c, runs in silences.items()}
        if any(sparse.values()):
            def dropout_in(gap: Gap, c: int) -> bool:  # channel c's own silence around the gap is cut off by its music
                own = next(((s, e) for s, e in silences[c] if s <= gap.start and gap.end <= e), None)
                return own is not None and cut_off(*own, slice(c, c + 1))

            gaps = [kept for g in gaps if (kept := _without_sparse_channels(g, sparse, dropout_in))]
        return sorted(gaps, key=lambda g: g.start)


def _sparse_spans(silences: list[tuple[int, int]], hit: int) -> list[tuple[int, int]]:
    """The stretches of sparse sound among a channel's ``silences`` (sorted ``(start, end)``): runs of
    ``SPARSE_RUNS`` or more silences, each at most ``hit`` samples of sound from the next, that
    fill ``SPARSE_SHARE`` of their stretch.  Each silence there is cut off by a click on both
    sides, but the clicks are the music."""
    spans, run = [], []
    for silence in [*silences, None]:
        if silence is not None and (not run or silence[0] - run[-1][1] <= hit):
            run.append(silence)
            continue
        if len(run) >= SPARSE_RUNS and sum(e - s for s, e in run) >= SPARSE_SHARE * (run[-1][1] - run[0][0]):
            spans.append((run[0][0], run[-1][1]))
        run = [silence]
    return spans


def _without_sparse_channels(gap: Gap, sparse: dict[int, list[tuple[int, int]]], dropout_in) -> Gap | None:
    """``gap`` less the channels in which it lies in sparse sound (``sparse``: each channel's spans),
    and, once one is, less those whose own silence there is no dropout (``dropout_in(gap, c)``
    false: the leading silence beside a click track); None when no channel is left."""
    channels = range(len(sparse)) if gap.channels is None else gap.channels
    inside = {c for c in channels if any(s <= gap.start and gap.end <= e for s, e in sparse.get(c, ()))}
    if not inside:
        return gap
    left = tuple(c for c in channels if c not in inside and dropout_in(gap, c))
    if not left:
        return None
    return Gap(gap.start, gap.end, f"digital silence in {plural(len(left), 'channel', number=False)} {', '.join(str(c + 1) for c in left)}", left)


def _format_of(path) -> tuple[str | None, str | None]:
    """The file's format and encoding (``("MP3", "MPEG_LAYER_III")``, ``("WAV", "ALAW")``), or
    Nones where ``path`` names no file libsndfile reads (or no file: an array's detection)."""
    try:
        info = sf.info(audio_io.sound_path(path))
    except (sf.LibsndfileError, RuntimeError, OSError, TypeError):
        return None, None
    return info.format, info.subtype


def _through_faint(audio, start: int, end: int, limit: int, level: float) -> tuple[int, int]:
    """``start:end`` widened, by ``limit`` samples at most on each side, over the samples that are
    fainter than ``level`` in every channel."""
    before = np.abs(audio[:, max(0, start - limit) : start]).max(axis=0) < level
    after = np.abs(audio[:, end : end + limit]).max(axis=0) < level
    loud_before, loud_after = np.flatnonzero(~before), np.flatnonzero(~after)
    start -= len(before) - (int(loud_before[-1]) + 1 if len(loud_before) else 0)
    end += int(loud_after[0]) if len(loud_after) else len(after)
    return start, end


def _rms(audio) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0


class LabelFile:
    """Regions marked by hand beside the audio file.

    * ``song.txt``: an Audacity label track export (start, end, label; tab-separated seconds).
    * ``song.gaps.json``: ``{"gaps": [{"start": 1.5, "end": 1.75}, ...]}`` in seconds.
    """

    def detect(self, audio, sample_rate, path=None):
        if path is None:
            return []
        path = Path(path)
        spans = []
        labels = path.with_suffix(".txt")
        if _is_file_or_too_long(labels):
            spans += [(labels, s, e, f"label {text!r}" if text else "label") for s, e, text in read_audacity_labels(labels)]
        sidecar = path.with_name(path.stem + ".gaps.json")
        if _is_file_or_too_long(sidecar):
            spans += [(sidecar, s, e, "sidecar") for s, e in read_json_sidecar(sidecar)]
        duration = audio.shape[-1] / sample_rate
        for source, start, end, _ in spans:
            if start >= duration:
                raise DetectionError(f"{source.name}: region {start:g}..{end:g} s starts after the end of the audio ({duration:.3f} s)")
        gaps = [self._gap(s, e, sample_rate, reason) for _, s, e, reason in spans]
        return [g for g in gaps if g.end > g.start]

    @staticmethod
    def _gap(start_s, end_s, sample_rate, reason):
        return Gap(round(start_s * sample_rate), round(end_s * sample_rate), reason)


def _is_file_or_too_long(path: Path) -> bool:
    """``path.is_file()``, False where the name is too long to exist (a sidecar of a 250-byte name)."""
    try:
        return path.is_file()
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            return False
        raise


def read_audacity_labels(path: Path) -> list[tuple[float, float, str]]:
    """Parse an Audacity label export; malformed lines raise with their line number.

    A ``.txt`` in which no line looks like a label (a time, then a tab) is some other text
    file (lyrics, notes) and yields no labels; in a label track every line must parse."""
    labels = []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        return []  # not a text file, so not a label track
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("\\")]
    if not any(_looks_like_label(line) for line in lines):
        return []  # a .txt of another kind beside the audio (lyrics, notes): not a label track
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("\\"):  # blank, or a spectral-selection line
            continue
        fields = line.split("\t")
        try:
            start = float(fields[0])
            if len(fields) >= 3:
                end, label = float(fields[1]), fields[2]
            elif len(fields) == 2:
                try:  # "start<TAB>end" with no label, or an old "start<TAB>label" export
                    end, label = float(fields[1]), ""
                except ValueError:
                    end, label = start, fields[1]
            else:
                end, label = start, ""
        except ValueError:
            raise DetectionError(f"{path.name}, line {number}: expected 'start<TAB>end<TAB>label' in seconds, got {line!r}") from None
        if not (np.isfinite(start) and np.isfinite(end)) or start < 0 or end < start:
            raise DetectionError(f"{path.name}, line {number}: bad time range {start}..{end}")
        labels.append((start, end, label.strip()))
    return labels


def _looks_like_label(line: str) -> bool:
    try:
        float(line.split("\t")[0])
        return "\t" in line
    except ValueError:
        return False


def read_json_sidecar(path: Path) -> list[tuple[float, float]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        spans = [(float(g["start"]), float(g["end"])) for g in data["gaps"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise DetectionError(f"{path.name}: expected {{\"gaps\": [{{\"start\": s, \"end\": s}}, ...]}} ({exc})") from None
    for i, (start, end) in enumerate(spans):
        if not (np.isfinite(start) and np.isfinite(end)) or start < 0 or end < start:
            raise DetectionError(f"{path.name}, gap {i}: bad time range {start}..{end}")
    return spans


@hookimpl
def register_gap_detectors(register):
    register("digital-silence", DigitalSilence)
    register("labels", LabelFile)
