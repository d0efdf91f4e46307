"""The repair engine: detect gaps, cut a Mel window around each, retrieve matching stretches of the
same recording (for inpainters that take them), inpaint, vocode, splice.

Only samples inside a gap are ever replaced; everything else stays as read.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from .gaps import Gap, mask_of, merge_gaps
from .mel import MIN_CONTEXT_FRAMES, MelFrontend, MelSettings, resample, window_for_gap
from .retrieval import RecordingFeatures, find_references
from .splice import continue_known

# Samples at the analysis rate on each side of a gap that resampling smears
# zeros into; they are treated as missing too (only when resampling).
RESAMPLE_MARGIN = 8
# Windows of one length inpainted in one call (channels are batch items).  Bounds the memory a file
# with many gaps needs; an inpainter's result for a window does not depend on what it is batched with.
WINDOWS_PER_BATCH = 16


@dataclass
class GapResult:
    start: int
    end: int
    reason: str
    status: str  # "repaired", "skipped" or "failed"
    message: str = ""
    method: str = ""  # "mel" (inpainter + vocoder), "short-gap" or "long-gap" (a sample repairer)

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
        }


def _padded(audio: np.ndarray, length: int) -> np.ndarray:
    """``audio`` ``[channels, samples]`` cut or padded with zeros to ``length`` samples (float32, a copy)."""
    out = np.zeros((audio.shape[0], length), dtype=np.float32)
    out[:, : min(length, audio.shape[1])] = audio[:, :length]
    return out


@dataclass
class _Window:
    """One gap's analysis window at the analysis rate."""

    gap: Gap
    file_start: int  # file sample where the window starts
    file_chunk: np.ndarray  # [channels, samples] of the file from there, gaps zeroed
    file_missing: np.ndarray  # [samples] bool, every gap in the chunk
    segment: np.ndarray  # [channels, samples] at the analysis rate, gaps zeroed
    missing: np.ndarray  # [samples] bool, every gap in the window
    missing_frames: np.ndarray  # [frames] bool
    log_mel: np.ndarray  # [channels, n_mels, frames] of the segment
    filled: np.ndarray | None = None  # log_mel with the missing frames inpainted
    references: np.ndarray | None = None  # [channels, k, n_mels, frames]: best-matching stretches, analysed alike
    quality: np.ndarray | None = None  # [k]: how well each matched (0: none found)


class Engine:
    def __init__(
        self,
        inpainter,
        vocoder,
        settings: MelSettings,
        detectors: list | None = None,
        max_gap_seconds: float = 3.0,
        context_frames: int = MIN_CONTEXT_FRAMES,
        short_gap_repairer=None,
        short_gap_ms: float = 0.0,
        long_gap_repairer=None,
        long_gap_ms: float = math.inf,
    ):
        self.inpainter = inpainter
        self.vocoder = vocoder
        self.settings = getattr(inpainter, "settings", None) or settings
        self.references = getattr(inpainter, "references", 0)  # stretches the inpainter wants retrieved per window
        self.frontend = MelFrontend(self.settings)
        self.detectors = detectors or []
        limit = getattr(inpainter, "max_gap_seconds", None)
        self.max_gap_seconds = min(max_gap_seconds, limit) if limit else max_gap_seconds
        self.context_frames = context_frames
        self.short_gap_repairer = short_gap_repairer
        self.short_gap_ms = short_gap_ms if short_gap_repairer else 0.0
        self.long_gap_repairer = long_gap_repairer
        self.long_gap_ms = long_gap_ms if long_gap_repairer else math.inf
        self.timings: dict[str, float] = defaultdict(float)  # seconds spent per stage, accumulated

    @contextmanager
    def timed(self, stage: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] += time.perf_counter() - started

    # -- detection ---------------------------------------------------------
    def detect(self, audio: np.ndarray, sample_rate: int, path=None) -> list[Gap]:
        """Union of every detector's gaps, merged.  ``audio`` is ``[channels, samples]``."""
        found: list[Gap] = []
        with self.timed("detect"):
            for detector in self.detectors:
                found.extend(detector.detect(audio, sample_rate, path))
        n = audio.shape[1]
        clipped = [Gap(max(0, g.start), min(n, g.end), g.reason) for g in found]
        return merge_gaps([g for g in clipped if g.end > g.start])

    # -- repair ------------------------------------------------------------
    def repair(self, audio: np.ndarray, sample_rate: int, gaps: list[Gap],
               truth: np.ndarray | None = None) -> tuple[dict[Gap, np.ndarray], list[GapResult]]:
        """Compute a fill ``[channels, gap.length]`` for each gap it can repair.

        Returns the fills by gap and one result per gap, in order.  ``truth``, for evaluation
        only: the undamaged recording, whose own Mel frames then replace the inpainter's (a
        perfect Mel inpainter: the best this front end and vocoder can do).
        """
        results = {g: GapResult(g.start, g.end, g.reason, "repaired", method="mel") for g in gaps}
        fills: dict[Gap, np.ndarray] = {}
        by_window: dict[int, list[Gap]] = {}  # the Mel pipeline's gaps, by window length
        for gap in gaps:
            method, repairer = self._sample_repairer(gap, sample_rate)
            if repairer is not None:
                with self.timed(method):
                    fill = self._repair_by_samples(repairer, audio, sample_rate, gap)
                if fill is not None:
                    fills[gap] = fill
                    results[gap].method = method
                    continue
            frames_or_reason = self._window_frames(gap, sample_rate)
            if isinstance(frames_or_reason, str):
                results[gap].status, results[gap].message = "skipped", frames_or_reason
                continue
            by_window.setdefault(frames_or_reason, []).append(gap)

        recording = None
        for n_frames, waiting in by_window.items():
            # At most WINDOWS_PER_BATCH windows are cut and held at once, whatever the file's length.
            for first in range(0, len(waiting), WINDOWS_PER_BATCH):
                with self.timed("analyse"):
                    group = [self._cut_window(audio, sample_rate, gap, gaps, n_frames, truth)
                             for gap in waiting[first : first + WINDOWS_PER_BATCH]]
                try:
                    if self.references:
                        with self.timed("retrieve"):
                            if recording is None:
                                recording = RecordingFeatures.of_recording(
                                    audio, sample_rate, self.frontend, [(g.start, g.end) for g in gaps])
                            for w in group:
                                self._retrieve(w, audio, sample_rate, recording)
                    with self.timed("inpaint"):
                        if truth is None:
                            self._inpaint(group)
                except Exception as exc:
                    for w in group:
                        results[w.gap].status, results[w.gap].message = "failed", f"inpainter error: {exc}"
                    continue
                for w in group:
                    try:
                        with self.timed("vocode"):
                            fills[w.gap] = self._vocode(w, sample_rate)
                    except Exception as exc:
                        results[w.gap].status, results[w.gap].message = "failed", f"vocoder error: {exc}"
        return fills, [results[g] for g in gaps]

    def plan(self, gap: Gap, sample_rate: int) -> tuple[str, str]:
        """How ``repair`` would take this gap, without filling it: the method it tries first
        ("short-gap", "long-gap" or "mel"), or "skipped" and why."""
        method, repairer = self._sample_repairer(gap, sample_rate)
        if repairer is not None:
            return method, ""
        frames_or_reason = self._window_frames(gap, sample_rate)
        return ("skipped", frames_or_reason) if isinstance(frames_or_reason, str) else ("mel", "")

    def _sample_repairer(self, gap: Gap, sample_rate: int):
        """Which waveform method (if any) gets this gap first: LSAR for short ones, similarity for long ones."""
        ms = 1000 * gap.length / sample_rate
        if ms <= self.short_gap_ms:
            return "short-gap", self.short_gap_repairer
        if ms >= self.long_gap_ms and ms <= 1000 * self.max_gap_seconds:
            return "long-gap", self.long_gap_repairer
        return "mel", None

    @staticmethod
    def _repair_by_samples(repairer, audio: np.ndarray, sample_rate: int, gap: Gap) -> np.ndarray | None:
        """The waveform method's fill, or None when it declines (the Mel pipeline then takes the gap)."""
        try:
            fill = np.asarray(repairer.repair(audio, gap.start, gap.end, sample_rate), dtype=np.float32)
        except ValueError:
            return None
        if fill.shape != (audio.shape[0], gap.length) or not np.isfinite(fill).all():
            return None
        return fill

    def _window_frames(self, gap: Gap, sample_rate: int) -> int | str:
        """The window length (frames) for this gap, or why it cannot be filled."""
        s = self.settings
        seconds = gap.length / sample_rate
        if seconds > self.max_gap_seconds + 1e-9:
            return f"gap of {seconds:.2f} s is longer than the {self.max_gap_seconds:g} s this pipeline fills"
        margin = 0 if sample_rate == s.sample_rate else RESAMPLE_MARGIN
        missing = s.missing_frames_for(math.ceil(gap.length * s.sample_rate / sample_rate) + 2 * margin)
        needed = missing + 2 * self.context_frames
        sizes = getattr(self.inpainter, "window_frames", None)
        if not sizes:
            return needed
        return window_for_gap(missing, sizes, self.context_frames) or (
            f"gap of {seconds:.2f} s needs a {needed}-frame window; the inpainter's largest is {sizes[-1]}"
        )

    def _cut_window(self, audio: np.ndarray, sample_rate: int, gap: Gap, all_gaps: list[Gap], n_frames: int,
                    truth: np.ndarray | None = None) -> _Window:
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
        segment = _padded(resample(chunk, sample_rate, s.sample_rate), length)
        margin = 0 if ratio == 1 else RESAMPLE_MARGIN
        missing = mask_of(
            [Gap(math.floor((g.start - start) * ratio) - margin, math.ceil((g.end - start) * ratio) + margin) for g in in_window],
            length,
        )
        segment[:, missing] = 0.0
        window = _Window(gap, start, chunk, file_missing, segment, missing, self.frontend.missing_frames(missing), self.frontend.log_mel(segment))
        if truth is not None:
            undamaged = self._stretch(truth, start, span, sample_rate, length)
            window.filled = np.where(window.missing_frames[None, None], self.frontend.log_mel(undamaged), window.log_mel)
        return window

    def _retrieve(self, w: _Window, audio: np.ndarray, sample_rate: int, recording: RecordingFeatures) -> None:
        """The stretches of the recording whose known frames best match the window's, cut and
        analysed exactly as the window was (the training sampler retrieves the same way)."""
        s = self.settings
        ratio = s.sample_rate / sample_rate
        channels, n_mels, n_frames = w.log_mel.shape
        w.references = np.zeros((channels, self.references, n_mels, n_frames), dtype=np.float32)
        w.quality = np.zeros(self.references, dtype=np.float32)
        found = find_references(recording, round(w.file_start * ratio), n_frames, ~w.missing_frames, self.references)
        for r, ref in enumerate(found):
            start = w.file_start + round(ref.offset / ratio)
            w.references[:, r] = self.frontend.log_mel(self._stretch(audio, start, w.file_chunk.shape[1], sample_rate, w.segment.shape[1]))
            w.quality[r] = ref.quality

    def _stretch(self, audio: np.ndarray, start: int, span: int, sample_rate: int, length: int) -> np.ndarray:
        """``span`` file samples from ``start`` (zeros beyond the file), at the analysis rate, ``length`` long."""
        chunk = _padded(audio[:, max(0, start) : start + span], span)
        return _padded(resample(chunk, sample_rate, self.settings.sample_rate), length)

    def _inpaint(self, group: list[_Window]) -> None:
        """One inpainter call for all windows of the same length; channels are batch items."""
        log_mel = np.concatenate([w.log_mel for w in group])
        missing = np.concatenate([np.repeat(w.missing_frames[None], w.segment.shape[0], 0) for w in group])
        retrieved = {}
        if self.references:
            retrieved["references"] = np.concatenate([w.references for w in group])
            retrieved["quality"] = np.concatenate([np.repeat(w.quality[None], w.segment.shape[0], 0) for w in group])
        filled = np.asarray(self.inpainter.inpaint(log_mel, missing, **retrieved), dtype=np.float32)
        if filled.shape != log_mel.shape:
            raise ValueError(f"returned shape {filled.shape}, expected {log_mel.shape}")
        if not np.isfinite(np.where(missing[:, None, :], filled, 0.0)).all():
            raise ValueError("returned NaN or infinite values")
        i = 0
        for w in group:
            c = w.segment.shape[0]
            w.filled = np.where(missing[i : i + c, None, :], filled[i : i + c], w.log_mel)
            i += c

    @staticmethod
    def _known_beside(w: _Window, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """Up to two known file samples just before ``start`` and just after ``end`` (fewer at the
        file's ends or next to another gap)."""
        known = ~w.file_missing
        lo = next(i for i in (start - 2, start - 1, start) if i >= 0 and known[i:start].all())
        hi = next(i for i in (end + 2, end + 1, end) if i <= len(known) and known[end:i].all())
        return w.file_chunk[:, lo:start], w.file_chunk[:, end:hi]

    def _vocode(self, w: _Window, sample_rate: int) -> np.ndarray:
        out = np.asarray(self.vocoder.vocode(w.filled, w.segment, w.missing, self.frontend), dtype=np.float32)
        if out.shape != w.segment.shape:
            raise ValueError(f"returned shape {out.shape}, expected {w.segment.shape}")
        out = np.where(w.missing[None], out, w.segment)
        back = resample(out, self.settings.sample_rate, sample_rate)
        start, end = w.gap.start - w.file_start, w.gap.end - w.file_start
        fill = back[:, start:end]
        if fill.shape != (w.segment.shape[0], w.gap.length):
            raise ValueError("window did not cover the gap")
        if not np.isfinite(fill).all():
            raise ValueError("returned NaN or infinite samples")
        # The fill must continue the file's own samples.  Griffin-Lim's output can jump right at the
        # edge of its hole, and after resampling the file's neighbours lie inside the samples the
        # vocoder made up (RESAMPLE_MARGIN), so neither the vocoder's own edge matching nor
        # `back` next to the gap can be trusted: pin the fill's end samples to the neighbours.
        fill = continue_known(fill, *self._known_beside(w, start, end))
        # Nor may it be louder than the music around it (Griffin-Lim can overshoot near the edges).
        peak = np.abs(w.file_chunk).max(axis=1, keepdims=True)
        fill = np.clip(fill, -peak, peak)
        return fill
