"""The repair engine: its stages (detect, choose, analyse, retrieve, inpaint, vocode, splice) and what they pass on.

Detect the gaps, choose each one's method, analyse a Mel window around it, retrieve matching
stretches of the same recording (for inpainters and vocoders that take them), inpaint, vocode, splice.
``Engine.repair`` runs the stages in that order; each is a public method, so a caller can follow
them top to bottom or swap one (evaluation's perfect-Mel ceiling replaces ``inpaint``).  Only
samples inside a gap are ever replaced; everything else stays as read.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np

from .analysis import EDGE_EXTRAPOLATION_MS, MAX_GAP_SECONDS
from .gaps import DetectionError, Gap, mask_of, merge_gaps
from .interpolate import interpolate_missing
from .mel import MIN_CONTEXT_FRAMES, MelFrontend, MelSettings, resample, window_for_gap
from .methods import LONG_GAP, MEL, OTHER_CHANNELS, SHORT_GAP, SKIPPED
from .contracts import reference_min_quality, references_wanted
from .correlate import align_shift
from .crosschannel import predict_from_other_channels
from .retrieval import RecordingFeatures, find_references, nearest_offset
from .splice import continue_known, dc_offset, extrapolated_edges, meet_at_seams

# Samples at the analysis rate on each side of a gap that resampling smears
# zeros into; they are treated as missing too (only when resampling).
RESAMPLE_MARGIN = 8
# File samples either side of a gap that align the vocoder's reference to the sample.
REFERENCE_ALIGN_SAMPLES = 2048
# A reference for the network may touch other gaps on up to this share of the window's gap frames
# (dense damage leaves few long stretches clean); its frames on other gaps are interpolated.
REFERENCE_MAX_DIRTY = 0.25
# How far past max_gap_seconds a gap may run and still be filled: a run of zeros can run on into
# music samples that happen to be zero (in 16-bit music, 0.2 % of 3 s dropouts grow by a sample).
GAP_SLACK_S = 0.01
# Windows of one length inpainted in one call (channels are batch items).  Bounds the memory a file
# with many gaps needs; an inpainter's result for a window does not depend on what it is batched with.
WINDOWS_PER_BATCH = 16
# The autoregressive model that the extrapolated edges of a Mel fill (EDGE_EXTRAPOLATION_MS) fade from:
# its order, and how much of the known samples on each side of the gap it is fitted on at most.
EDGE_AR_ORDER = 512
EDGE_AR_CONTEXT_S = 0.2


@dataclass
class GapResult:
    start: int
    end: int
    reason: str
    status: str  # "repaired", "skipped" or "failed"
    message: str = ""
    method: str = ""  # MEL (inpainter + vocoder), SHORT_GAP or LONG_GAP (a sample repairer), OTHER_CHANNELS, SKIPPED (melrestore.methods)
    channels: tuple[int, ...] | None = None  # the gap's channels (0-based); None: every channel

    @classmethod
    def of(cls, gap: Gap, status: str, method: str, message: str = "") -> GapResult:
        """The result for ``gap`` (its span, reason and channels)."""
        return cls(gap.start, gap.end, gap.reason, status, message, method, gap.channels)

    @classmethod
    def failed(cls, gap: Gap, message: str, method: str = MEL) -> GapResult:
        """``gap`` failed: ``message`` says which plugin, and why."""
        return cls.of(gap, "failed", method, message)

    def to_dict(self, sample_rate: int) -> dict:
        return {
            "start": self.start,
            "end": self.end,
            "start_s": round(self.start / sample_rate, 6),
            "duration_ms": round(1000 * (self.end - self.start) / sample_rate, 3),
            "reason": self.reason,
            "status": self.status,
            "method": self.method,
            "message": self.message,
            "channels": None if self.channels is None else list(self.channels),
        }


def _padded(audio: np.ndarray, length: int) -> np.ndarray:
    """``audio`` ``[channels, samples]`` cut or padded with zeros to ``length`` samples (float32, a copy)."""
    out = np.zeros((audio.shape[0], length), dtype=np.float32)
    out[:, : min(length, audio.shape[1])] = audio[:, :length]
    return out


@dataclass(frozen=True)
class Plan:
    """How ``repair`` takes a gap (the choose stage): the waveform method it tries first, if any, and
    the Mel window that takes the gap otherwise (or when that method declines)."""

    gap: Gap
    method: str  # SHORT_GAP or LONG_GAP (a sample repairer first), OTHER_CHANNELS, MEL, or SKIPPED (melrestore.methods)
    window_frames: int | None = None  # the Mel window's length (frames); None: the Mel pipeline cannot take it
    reason: str = ""  # why the Mel pipeline cannot take it

    def as_found(self) -> GapResult:
        """What ``detect`` reports for the gap: found, with the method that would fill it first, or
        skipped and why."""
        skipped = self.method == SKIPPED
        return GapResult.of(self.gap, "skipped" if skipped else "found", self.method, self.reason if skipped else "")


@dataclass
class Window:
    """One gap's analysis window (the analyse stage), filled in by the later stages."""

    gap: Gap
    sample_rate: int  # the file's rate
    file_start: int  # file sample where the window starts
    file_chunk: np.ndarray  # [channels, samples] of the file from there, gaps zeroed
    file_missing: np.ndarray  # [samples] bool, every gap in the chunk
    offset: np.ndarray  # [channels]: the chunk's DC offset (mean of its known samples), kept out of the Mel path
    segment: np.ndarray  # [channels, samples] at the analysis rate, gaps zeroed
    missing: np.ndarray  # [samples] bool, every gap in the window
    missing_frames: np.ndarray  # [frames] bool
    log_mel: np.ndarray  # [channels, n_mels, frames] of the segment
    gap_frames: np.ndarray  # [frames] bool: the frames that touch this window's own gap (the others are other gaps)
    references: np.ndarray | None = None  # [channels, k, n_mels, frames]: best-matching stretches, analysed alike
    quality: np.ndarray | None = None  # [k]: how well each matched (0: none found)
    reference: np.ndarray | None = None  # [channels, samples] like segment: the best match, aligned to the sample, for the vocoder
    filled: np.ndarray | None = None  # log_mel with the missing frames inpainted

    @property
    def channels(self) -> int:
        return self.segment.shape[0]


class Engine:
    def __init__(
        self,
        inpainter,
        vocoder,
        settings: MelSettings,
        detectors: list | None = None,
        max_gap_seconds: float = MAX_GAP_SECONDS,
        context_frames: int = MIN_CONTEXT_FRAMES,
        short_gap_repairer=None,
        short_gap_ms: float = 0.0,
        long_gap_repairer=None,
        long_gap_ms: float = math.inf,
        edge_extrapolation_ms: float = EDGE_EXTRAPOLATION_MS,
    ):
        self.inpainter = inpainter
        self.vocoder = vocoder
        self.settings = inpainter.settings or settings
        self.references_per_window = references_wanted(inpainter)  # stretches the inpainter wants retrieved per window
        self.reference_min_quality = reference_min_quality(vocoder)  # None: the vocoder takes no reference
        self.frontend = MelFrontend(self.settings)
        self.detectors = detectors or []
        limit = inpainter.max_gap_seconds
        self.max_gap_seconds = min(max_gap_seconds, limit) if limit else max_gap_seconds
        self.context_frames = context_frames
        self.short_gap_repairer = short_gap_repairer
        self.short_gap_ms = short_gap_ms if short_gap_repairer else 0.0
        self.long_gap_repairer = long_gap_repairer
        self.long_gap_ms = long_gap_ms if long_gap_repairer else math.inf
        self.edge_extrapolation_ms = edge_extrapolation_ms  # 0: the vocoder's fill alone
        self.timings: dict[str, float] = defaultdict(float)  # seconds spent per stage, accumulated

    @contextmanager
    def timed(self, stage: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] += time.perf_counter() - started

    # -- the stages: detect, then repair runs the others in this order --------------------------

    def detect(self, audio: np.ndarray, sample_rate: int, path=None) -> list[Gap]:
        """Union of every detector's gaps, cut to the file and merged.  ``audio`` is ``[channels,
        samples]``.  DetectionError names a detector that returns anything but gaps."""
        found: list[Gap] = []
        with self.timed("detect"):
            for detector in self.detectors:
                for gap in detector.detect(audio, sample_rate, path):
                    if not isinstance(gap, Gap) or gap.end < gap.start:  # a plugin's bug, said as such
                        raise DetectionError(f"gap detector {type(detector).__name__} returned {gap!r}, not a Gap(start, end) with end >= start")
                    found.append(gap)
        n = audio.shape[1]
        clipped = [replace(g, start=max(0, g.start), end=min(n, g.end)) for g in found]
        return merge_gaps([g for g in clipped if g.end > g.start])

    def repair(self, audio: np.ndarray, sample_rate: int, gaps: list[Gap],
               progress: Callable[[int, int], None] | None = None) -> tuple[dict[Gap, np.ndarray], list[GapResult]]:
        """Compute a fill ``[channels, gap.length]`` for each gap it can repair (``splice`` puts them in;
        for a gap of some channels only, only those rows of its fill).  Fills of gaps that touch are
        joined at their seam last (``meet_at_seams``).

        Returns the fills by gap and one result per gap, in order.  A failing inpainter fails the
        windows it was given, a failing vocoder the gap it was vocoding; the other gaps go on.
        ``progress(done, total)`` is called with (0, total) first, then each time gaps are done
        (filled, skipped or failed); the last call is (total, total).  No gaps, no calls.
        """
        done = 0

        def count(n: int = 1) -> None:
            nonlocal done
            done += n
            if progress and gaps:
                progress(done, len(gaps))

        count(0)
        fills: dict[Gap, np.ndarray] = {}
        results: dict[Gap, GapResult] = {}
        waiting = self._try_waveform_methods(audio, sample_rate, gaps, fills, results, count)
        self._fill_by_mel(waiting, audio, sample_rate, gaps, fills, results, count)
        return meet_at_seams(audio, gaps, fills), [results[g] for g in gaps]

    def _try_waveform_methods(self, audio: np.ndarray, sample_rate: int, gaps: list[Gap], fills: dict[Gap, np.ndarray],
                              results: dict[Gap, GapResult], count: Callable[[int], None]) -> dict[int, list[Gap]]:
        """Choose each gap's method and try its waveform method, if it has one: the gaps that this
        fills, fails or leaves for no Mel window to take get their ``fills`` and ``results`` (and are
        counted done).  Returns the gaps still waiting, for the Mel pipeline, by window length (frames)."""
        waiting: dict[int, list[Gap]] = {}
        for gap in gaps:
            plan = self.choose(gap, sample_rate)
            try:
                fill = self.repair_by_samples(plan, audio, sample_rate, gaps)
            except Exception as exc:  # a repairer's bug, or a fill it should not have returned: that gap fails
                results[gap] = GapResult.failed(gap, f"{plan.method} repairer error: {exc}", plan.method)
            else:
                if fill is not None:
                    fills[gap], results[gap] = fill, GapResult.of(gap, "repaired", plan.method)
                elif plan.window_frames is None:
                    results[gap] = GapResult.of(gap, "skipped", SKIPPED, plan.reason)
                else:
                    waiting.setdefault(plan.window_frames, []).append(gap)
                    continue
            count(1)
        return waiting

    def _fill_by_mel(self, waiting: dict[int, list[Gap]], audio: np.ndarray, sample_rate: int, gaps: list[Gap],
                     fills: dict[Gap, np.ndarray], results: dict[Gap, GapResult], count: Callable[[int], None]) -> None:
        """The Mel pipeline for the ``waiting`` gaps (by window length): analyse, retrieve, inpaint a
        batch of windows of one length at a time, then vocode each; their ``fills`` and ``results``
        (a failing inpainter fails its batch, a failing vocoder its gap), counted done as they come."""
        recording = None  # the retrieval features of the whole recording, made once
        for n_frames, same_length in waiting.items():
            # At most WINDOWS_PER_BATCH windows are cut and held at once, whatever the file's length.
            for first in range(0, len(same_length), WINDOWS_PER_BATCH):
                group = [self.analyse(audio, sample_rate, gap, gaps, n_frames)
                         for gap in same_length[first : first + WINDOWS_PER_BATCH]]
                try:
                    if self.references_per_window or self.reference_min_quality is not None:
                        if recording is None:
                            recording = self.recording_features(audio, sample_rate, gaps)
                        self.retrieve(group, audio, recording)
                    self.inpaint(group)
                except Exception as exc:
                    for w in group:
                        results[w.gap] = GapResult.failed(w.gap, f"inpainter error: {exc}")
                    count(len(group))
                    continue
                for w in group:
                    try:
                        fills[w.gap], results[w.gap] = self.vocode(w), GapResult.of(w.gap, "repaired", MEL)
                    except Exception as exc:
                        results[w.gap] = GapResult.failed(w.gap, f"vocoder error: {exc}")
                    count(1)

    def choose(self, gap: Gap, sample_rate: int) -> Plan:
        """How this gap is taken: a waveform method first (the channels that still play for a dropout
        of some channels, LSAR for short gaps, similarity for long ones), and the Mel window that
        takes it otherwise, or why none can."""
        ms, seconds = 1000 * gap.length / sample_rate, gap.length / sample_rate
        longest = self.max_gap_seconds + GAP_SLACK_S
        first = None
        if gap.channels is not None and seconds <= longest:
            first = OTHER_CHANNELS
        elif ms <= self.short_gap_ms:
            first = SHORT_GAP
        elif self.long_gap_ms <= ms <= 1000 * longest:
            first = LONG_GAP
        if seconds > longest:
            reason = f"gap of {seconds:.2f} s is longer than the {self.max_gap_seconds:g} s this pipeline fills"
            return Plan(gap, first or SKIPPED, None, reason)
        s = self.settings
        margin = 0 if sample_rate == s.sample_rate else RESAMPLE_MARGIN
        missing = s.missing_frames_for(math.ceil(gap.length * s.sample_rate / sample_rate) + 2 * margin)
        needed = missing + 2 * self.context_frames
        sizes = self.inpainter.window_frames
        frames = window_for_gap(missing, sizes, self.context_frames) if sizes else needed
        if frames is None:
            reason = f"gap of {seconds:.2f} s needs a {needed}-frame window; the inpainter's largest is {sizes[-1]}"
            return Plan(gap, first or SKIPPED, None, reason)
        return Plan(gap, first or MEL, frames)

    def repair_by_samples(self, plan: Plan, audio: np.ndarray, sample_rate: int, all_gaps: list[Gap] = ()) -> np.ndarray | None:
        """The fill of the waveform method the plan names, or None when there is none or it declines
        (raises ValueError: the Mel pipeline then takes the gap).  A fill of the wrong shape or with
        NaN is an error (ValueError raised here, not by the repairer)."""
        gap = plan.gap
        if plan.method == OTHER_CHANNELS:
            with self.timed(plan.method):
                fill = predict_from_other_channels(audio, gap, sample_rate, all_gaps)
            return fill if fill is not None and np.isfinite(fill).all() else None
        repairer = {SHORT_GAP: self.short_gap_repairer, LONG_GAP: self.long_gap_repairer}.get(plan.method)
        if repairer is None:
            return None
        with self.timed(plan.method):
            try:
                fill = np.asarray(repairer.repair(audio, gap.start, gap.end, sample_rate), dtype=np.float32)
            except ValueError:
                return None
        if fill.shape != (audio.shape[0], gap.length):
            raise ValueError(f"returned shape {fill.shape}, expected {(audio.shape[0], gap.length)}")
        if not np.isfinite(fill).all():
            raise ValueError("returned NaN or infinite samples")
        return fill

    def analyse(self, audio: np.ndarray, sample_rate: int, gap: Gap, all_gaps: list[Gap], n_frames: int) -> Window:
        """Cut the ``n_frames`` window around ``gap`` (every gap in it zeroed and marked missing),
        bring it to the analysis rate and take its log-Mel.  A gap of some channels is missing in
        all of them here: the Mel path fills every channel, and only the gap's own are spliced."""
        with self.timed("analyse"):
            s = self.settings
            ratio = s.sample_rate / sample_rate
            length = s.samples_for(n_frames)  # samples at the analysis rate
            n_file = audio.shape[1]
            span = math.floor(length / ratio) - 1  # file samples inside the window
            start = (gap.start + gap.end) // 2 - span // 2
            start = max(0, min(start, n_file - span))
            # Nearby gaps are zeros too: mask them all, so no window mistakes one for music.
            in_window = [g for g in all_gaps if g.end > start and g.start < start + span]
            chunk = _padded(audio[:, start : start + span], span)
            file_missing = mask_of([Gap(g.start - start, g.end - start) for g in in_window], span)
            chunk[:, file_missing] = 0.0
            file_missing[n_file - start :] = True  # padding past the file's end is no neighbour either
            offset = dc_offset(chunk, ~file_missing)
            segment = _padded(resample(np.where(file_missing, 0.0, chunk - offset[:, None]), sample_rate, s.sample_rate), length)
            margin = 0 if ratio == 1 else RESAMPLE_MARGIN

            def in_segment(g: Gap) -> Gap:  # the samples of the segment that g leaves unknown
                return Gap(math.floor((g.start - start) * ratio) - margin, math.ceil((g.end - start) * ratio) + margin)

            missing = mask_of([in_segment(g) for g in in_window], length)
            segment[:, missing] = 0.0
            return Window(gap, sample_rate, start, chunk, file_missing, offset, segment, missing, self.frontend.missing_frames(missing),
                          self.frontend.log_mel(segment), self.frontend.missing_frames(mask_of([in_segment(gap)], length)))

    def recording_features(self, audio: np.ndarray, sample_rate: int, gaps: list[Gap]) -> RecordingFeatures:
        """What retrieval searches: compact features of the whole recording, its gaps left out."""
        with self.timed("retrieve"):
            return RecordingFeatures.of_recording(audio, sample_rate, self.frontend, [(g.start, g.end) for g in gaps])

    def retrieve(self, windows: list[Window], audio: np.ndarray, recording: RecordingFeatures) -> None:
        """For each window, the stretches of the recording whose known frames best match the
        window's, cut and analysed exactly as the window was (the training sampler retrieves the
        same way): ``references`` and their match ``quality`` for the inpainter; and for a vocoder
        that takes one, the best stretch aligned to the sample (``reference``) if it matched well
        enough.  Where the window's other gaps are, frames are not compared (training windows hold
        one gap).  Where the window's own gap is, the vocoder's stretch must be clean, and the
        network's nearly so (``REFERENCE_MAX_DIRTY``)."""
        with self.timed("retrieve"):
            for w in windows:
                ratio = self.settings.sample_rate / w.sample_rate
                channels, n_mels, n_frames = w.log_mel.shape
                window_start = round(w.file_start * ratio)
                known = ~w.missing_frames
                nearest = self.nearest_reference(w)  # the network's stretches and the vocoder's alike
                found = []
                if self.references_per_window:
                    found = find_references(recording, window_start, n_frames, known, self.references_per_window,
                                            w.gap_frames, REFERENCE_MAX_DIRTY, nearest)
                    w.references = np.zeros((channels, self.references_per_window, n_mels, n_frames), dtype=np.float32)
                    w.quality = np.zeros(self.references_per_window, dtype=np.float32)
                    first = recording.frame_at(window_start)  # where find_references placed the window
                    for r, ref in enumerate(found):
                        planes = self.frontend.log_mel(self.cut_like(w, audio, w.file_start + round(ref.offset / ratio)))
                        dirty = recording.dirty_frames(first + ref.offset // recording.hop, n_frames)
                        if dirty.any():  # another gap's silence is no music to copy: draw straight lines across it
                            planes = interpolate_missing(planes, np.broadcast_to(dirty, (channels, n_frames)))
                        w.references[:, r], w.quality[r] = planes, ref.quality
                if self.reference_min_quality is not None:  # the vocoder's stretch must be clean where the gap is
                    if not found or found[0].dirty:  # (the best of all is clean: then it is the best clean one)
                        found = find_references(recording, window_start, n_frames, known, 1, w.gap_frames, min_offset=nearest)
                    if found and found[0].quality >= self.reference_min_quality:
                        w.reference = self.cut_like(w, audio, w.file_start + self.aligned(w, audio, round(found[0].offset / ratio)))

    def nearest_reference(self, w: Window) -> int:
        """How near (frames) the references may lie to window ``w`` (``retrieval.nearest_offset``)."""
        n_frames = w.log_mel.shape[-1]
        return nearest_offset(n_frames, int(w.gap_frames.sum()), min(self.inpainter.window_frames or (n_frames,)))

    def aligned(self, w: Window, audio: np.ndarray, shift: int) -> int:
        """``shift`` (file samples from the window to a matching stretch, on the retrieval's frame
        grid) refined to the sample by the known samples either side of ``w``'s gap."""
        hop = math.ceil(self.settings.hop_length * w.sample_rate / self.settings.sample_rate)  # in file samples
        mono = lambda lo, hi: audio[:, lo:hi].mean(axis=0)  # noqa: E731
        return align_shift(mono, audio.shape[1], w.gap.start, w.gap.end, shift, hop, REFERENCE_ALIGN_SAMPLES)

    def cut_like(self, w: Window, audio: np.ndarray, start: int) -> np.ndarray:
        """``audio``'s stretch from file sample ``start``, cut and brought to the analysis rate as
        window ``w``'s segment was (its own DC offset removed, zeros beyond the file's ends)."""
        span, length = w.file_chunk.shape[1], w.segment.shape[1]
        chunk = np.zeros((audio.shape[0], span), dtype=np.float32)
        piece = audio[:, max(0, start) : start + span]
        inside = slice(max(0, -start), max(0, -start) + piece.shape[1])
        chunk[:, inside] = piece - dc_offset(piece)[:, None]
        return _padded(resample(chunk, w.sample_rate, self.settings.sample_rate), length)

    def inpaint(self, windows: list[Window]) -> None:
        """One inpainter call for windows of the same length (channels are batch items): each
        window's ``filled``, its missing frames from the inpainter, the others as analysed."""
        with self.timed("inpaint"):
            log_mel = np.concatenate([w.log_mel for w in windows])
            missing = np.concatenate([np.repeat(w.missing_frames[None], w.channels, 0) for w in windows])
            retrieved = {}
            if self.references_per_window:
                retrieved["references"] = np.concatenate([w.references for w in windows])
                retrieved["quality"] = np.concatenate([np.repeat(w.quality[None], w.channels, 0) for w in windows])
            filled = np.asarray(self.inpainter.inpaint(log_mel, missing, **retrieved), dtype=np.float32)
            if filled.shape != log_mel.shape:
                raise ValueError(f"returned shape {filled.shape}, expected {log_mel.shape}")
            if not np.isfinite(np.where(missing[:, None, :], filled, 0.0)).all():
                raise ValueError("returned NaN or infinite values")
            i = 0
            for w in windows:
                w.filled = np.where(missing[i : i + w.channels, None, :], filled[i : i + w.channels], w.log_mel)
                i += w.channels

    def vocode(self, w: Window) -> np.ndarray:
        """The gap's fill ``[channels, gap.length]`` at the file's rate, from the window's filled
        log-Mel: vocoded, brought back to the file's rate, meeting the known samples, no louder
        than the music around it."""
        with self.timed("vocode"):
            match = {} if w.reference is None else {"reference": w.reference}
            out = np.asarray(self.vocoder.vocode(w.filled, w.segment, w.missing, self.frontend, **match), dtype=np.float32)
            if out.shape != w.segment.shape:
                raise ValueError(f"returned shape {out.shape}, expected {w.segment.shape}")
            out = np.where(w.missing[None], out, w.segment)
            back = resample(out, self.settings.sample_rate, w.sample_rate)
            start, end = w.gap.start - w.file_start, w.gap.end - w.file_start
            fill = back[:, start:end] + w.offset[:, None]
            if fill.shape != (w.channels, w.gap.length):
                raise ValueError("window did not cover the gap")
            if not np.isfinite(fill).all():
                raise ValueError("returned NaN or infinite samples")
            before, after = _known_beside(w, start, end, max(2, round(EDGE_AR_CONTEXT_S * w.sample_rate)))
            if self.edge_extrapolation_ms > 0:  # the waveform carried on from each side, faded into the fill
                edge = round(self.edge_extrapolation_ms * w.sample_rate / 1000)
                fill = extrapolated_edges(fill, before, after, edge, EDGE_AR_ORDER, w.offset)
            # The fill must continue the file's own samples.  Griffin-Lim's output can jump right at the
            # edge of its hole, and after resampling the file's neighbours lie inside the samples the
            # vocoder made up (RESAMPLE_MARGIN), so neither the vocoder's own edge matching nor
            # `back` next to the gap can be trusted: pin the fill's end samples to the neighbours.
            fill = continue_known(fill, before[:, -2:], after[:, :2])
            # Nor may it be louder than the music around it (Griffin-Lim can overshoot near the edges).
            offset = w.offset[:, None]
            peak = np.abs(np.where(w.file_missing, 0.0, w.file_chunk - offset)).max(axis=1, keepdims=True)
            return np.clip(fill, offset - peak, offset + peak)

    @staticmethod
    def splice(audio: np.ndarray, fills: dict[Gap, np.ndarray]) -> None:
        """Put each fill into its gap of the float array ``audio`` ``[channels, samples]`` (into the
        gap's own channels), and nothing else.  (``batch`` writes files in pieces instead: it
        quantises the same fills into patches of a copy of the input, ``melrestore.audio.write_repaired``.)"""
        for gap, fill in fills.items():
            rows = slice(None) if gap.channels is None else list(gap.channels)
            audio[rows, gap.start : gap.end] = fill[rows]


def _known_beside(w: Window, start: int, end: int, most: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``most`` known file samples just before ``start`` and just after ``end``: the unbroken
    runs of them (shorter at the window's or file's ends or next to another gap)."""
    known = ~w.file_missing
    before = known[max(0, start - most) : start][::-1]
    after = known[end : end + most]
    lo = start - (len(before) if before.all() else int(np.argmin(before)))
    hi = end + (len(after) if after.all() else int(np.argmin(after)))
    return w.file_chunk[:, lo:start], w.file_chunk[:, end:hi]
