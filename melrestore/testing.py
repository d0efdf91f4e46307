"""The plugin contracts as checks a plugin author can run: one ``check_*`` function per plugin kind.

From pytest::

    from melrestore.testing import check_vocoder

    def test_my_vocoder_keeps_the_contract():
        check_vocoder(MyVocoder())

or from the shell: ``melrestore check-plugin NAME`` (any kind).  Each check first holds the object
against its kind's class in ``melrestore.contracts``, then runs it on real signals (a chord, mono
and stereo, at the shipped analysis settings), and raises AssertionError naming the broken rule.
Each returns the rules that passed, one line each.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import contracts
from .gaps import Gap
from .mel import MelFrontend, MelSettings


def _chord(samples: int, rate: int, channels: int) -> np.ndarray:
    t = np.arange(samples) / rate
    return np.stack([0.2 * sum(np.sin(2 * np.pi * f * t + c) for f in (220.0, 277.2, 329.6)) / 3 for c in range(channels)]).astype(np.float32)


def _case(frontend: MelFrontend, channels: int, gap_ms: float):
    s = frontend.settings
    segment = _chord(s.samples_for(128), s.sample_rate, channels)
    n = int(gap_ms * s.sample_rate / 1000)
    start = (segment.shape[1] - n) // 2
    missing = np.zeros(segment.shape[1], dtype=bool)
    missing[start : start + n] = True
    damaged = np.where(missing, 0.0, segment).astype(np.float32)
    log_mel = frontend.log_mel(segment)  # a perfect inpainter's window
    return segment, damaged, missing, log_mel, (start, start + n)


def _keeps(obj, contract: type) -> None:
    """AssertionError naming what ``obj`` lacks of ``contract`` (a class in ``melrestore.contracts``)."""
    lacking = contracts.missing_members(obj, contract)
    assert not lacking, f"{type(obj).__name__} lacks {', '.join(lacking)} of the {contract.__name__} contract"


def _check_array(out, shape: tuple, what: str, used: np.ndarray | None = None) -> np.ndarray:
    """``out`` as an array of ``shape``, floating point, finite (where ``used``, a bool mask, if given)."""
    out = np.asarray(out)
    assert out.shape == shape, f"{what} shape {out.shape}, expected {shape}"
    assert np.issubdtype(out.dtype, np.floating), f"{what} dtype {out.dtype} is not floating point"
    assert np.isfinite(out if used is None else out[used]).all(), f"{what} holds NaN or infinite values"
    return out


def _check_fill(fill: np.ndarray, truth: np.ndarray, music: np.ndarray, before: np.ndarray, after: np.ndarray) -> None:
    """A gap's fill against the samples it replaces (``truth``), the ``music`` around it and the known
    samples just ``before`` and ``after`` it (``[channels]`` each): audible, not far louder, no jump."""
    assert np.sqrt(np.mean(fill**2)) > 0.25 * np.sqrt(np.mean(truth**2)), "the fill is (nearly) silent"
    assert np.abs(fill).max() < 4 * np.abs(music).max(), "the fill is far louder than the music around it"
    step = np.percentile(np.abs(np.diff(music, axis=1)), 99)
    jump = max(np.abs(fill[:, 0] - before).max(), np.abs(fill[:, -1] - after).max())
    assert jump < 3 * step, (
        f"the fill jumps by {jump:.4f} where it meets the known samples (the music's own steps stay below {step:.4f})"
    )


def check_output(vocoder, frontend: MelFrontend, channels: int, gap_ms: float, with_reference: bool = False) -> None:
    """``with_reference``: handed the undamaged segment as its best-matching stretch."""
    segment, damaged, missing, log_mel, (start, end) = _case(frontend, channels, gap_ms)
    match = {"reference": segment} if with_reference else {}
    out = _check_array(vocoder.vocode(log_mel, damaged, missing, frontend, **match), damaged.shape, "output")
    _check_fill(out[:, start:end], segment[:, start:end], segment, damaged[:, start - 1], damaged[:, end])


def check_bad_input(vocoder, frontend: MelFrontend) -> None:
    _, damaged, missing, log_mel, _ = _case(frontend, 1, 100)
    bad_cases = {
        "a log-Mel window with the wrong number of bands": (log_mel[:, :-8], damaged, missing),
        "a mask of the wrong length": (log_mel, damaged, missing[:-100]),
        "a NaN in the log-Mel window": (np.where(np.arange(log_mel.shape[-1]) == 3, np.nan, log_mel), damaged, missing),
    }
    for what, args in bad_cases.items():
        try:
            vocoder.vocode(*args, frontend)
        except ValueError as exc:
            assert str(exc), f"the ValueError for {what} has no message"
        else:
            raise AssertionError(f"no ValueError for {what}")


def check_vocoder(vocoder, settings: MelSettings | None = None) -> list[str]:
    """Run every check; returns the names of those that passed (raises on the first failure)."""
    _keeps(vocoder, contracts.Vocoder)
    frontend = MelFrontend(settings or MelSettings())
    passed = []
    for channels in (1, 2):
        for gap_ms in (20, 250):
            check_output(vocoder, frontend, channels, gap_ms)
            passed.append(f"{'mono' if channels == 1 else 'stereo'} {gap_ms} ms gap: right shape, finite, audible, no jump")
    if contracts.reference_min_quality(vocoder) is not None:
        for channels in (1, 2):
            check_output(vocoder, frontend, channels, 250, with_reference=True)
        passed.append("with a matching stretch: right shape, finite, audible, no jump")
    check_bad_input(vocoder, frontend)
    passed.append("bad input: clear ValueError")
    return passed


def check_inpainter(inpainter, settings: MelSettings | None = None) -> list[str]:
    """The inpainter contract: its attributes, then a chord's window with a gap a quarter of the
    window long, mono and stereo, at each window length it accepts (128 and 200 frames if any):
    the same shape back, finite where it filled, near the chord's level, inputs left alone.  An
    inpainter that takes references is called as the engine calls it, with no match and with the
    true window as a perfect one."""
    _keeps(inpainter, contracts.Inpainter)
    sizes = inpainter.window_frames
    assert sizes is None or (len(sizes) and list(sizes) == sorted(sizes) and all(int(t) == t > 0 for t in sizes)), (
        f"window_frames must be None or ascending positive frame counts, not {sizes!r}")
    limit = inpainter.max_gap_seconds
    assert limit is None or limit > 0, f"max_gap_seconds must be None or above 0, not {limit!r}"
    assert inpainter.settings is None or isinstance(inpainter.settings, contracts.MelAnalysis), (
        f"settings must be None or MelSettings, not {type(inpainter.settings).__name__}")
    frontend = MelFrontend(inpainter.settings or settings or MelSettings())
    k = contracts.references_wanted(inpainter)
    passed = ["attributes: settings, window_frames, max_gap_seconds" + (f", references = {k}" if k else "")]
    for frames in sizes or (128, 200):
        for channels in (1, 2):
            s = frontend.settings
            clean = _chord(s.samples_for(frames), s.sample_rate, channels)
            missing = np.zeros(clean.shape[1], dtype=bool)
            missing[3 * len(missing) // 8 : 5 * len(missing) // 8] = True
            log_mel, missing_frames = frontend.analyse_with_gap(clean, missing)
            truth = frontend.log_mel(clean)
            filled = np.broadcast_to(missing_frames[:, None, :], log_mel.shape)  # what the engine takes
            calls = {"": {}}
            if k:
                shape = (channels, k, *log_mel.shape[1:])
                calls = {"no match": {"references": np.zeros(shape, np.float32), "quality": np.zeros((channels, k), np.float32)},
                         "a perfect match": {"references": np.repeat(truth[:, None], k, 1), "quality": np.ones((channels, k), np.float32)}}
            for how, retrieved in calls.items():
                given = (log_mel.copy(), missing_frames.copy())
                out = _check_array(inpainter.inpaint(log_mel, missing_frames, **retrieved), log_mel.shape, "output", filled)
                assert np.array_equal(given[0], log_mel) and np.array_equal(given[1], missing_frames), "inpaint changed its inputs"
                # e^3 is about 26 dB: any fill of a steady chord lands far closer than that.
                off = out[filled].mean() - truth[filled].mean()
                assert abs(off) < 3, f"the fill's mean log-Mel level is {off:+.1f} off the chord's (natural log)"
                passed.append(f"{frames} frames, {'mono' if channels == 1 else 'stereo'}{', ' + how if how else ''}: "
                              "right shape, finite, at the music's level, inputs unchanged")
    return passed


def check_detector(detector, sample_rate: int = 44100) -> list[str]:
    """The detector contract on a chord with a 50 ms dropout, mono and stereo, without a file
    (``path`` None): a list of Gap inside the audio, each with a reason, and the audio untouched."""
    _keeps(detector, contracts.GapDetector)
    passed = []
    for channels in (1, 2):
        audio = _chord(2 * sample_rate, sample_rate, channels)
        audio[:, sample_rate : sample_rate + sample_rate // 20] = 0.0
        given = audio.copy()
        gaps = detector.detect(audio, sample_rate, None)
        assert isinstance(gaps, list), f"detect returned {type(gaps).__name__}, not a list of Gap"
        for gap in gaps:
            assert isinstance(gap, Gap), f"detect returned a {type(gap).__name__}, not a melrestore.Gap"
            assert 0 <= gap.start < gap.end <= audio.shape[1], f"{gap} is not a span inside the {audio.shape[1]} samples"
            assert isinstance(gap.reason, str) and gap.reason, f"{gap} gives no reason"
            assert gap.channels is None or (gap.channels and all(0 <= c < channels for c in gap.channels)), \
                f"{gap} names channels the audio does not have (None means every channel)"
        assert np.array_equal(audio, given), "detect changed the audio"
        passed.append(f"{'mono' if channels == 1 else 'stereo'}, no file: {len(gaps)} gap(s) inside the audio, each with a reason; audio unchanged")
    return passed


def check_sample_repairer(repairer, sample_rate: int = 44100) -> list[str]:
    """The sample repairer contract on 8 s of a chord, mono and stereo, with gaps of 10 and 40 ms
    in the middle: each fill ``[channels, gap]``, finite, audible, no jump, or a ValueError to
    decline; a gap at the very start of the file is filled or declined the same way; the audio
    is left alone.  (8 s leave a method that copies from elsewhere in the recording room to.)"""
    _keeps(repairer, contracts.SampleRepairer)
    passed = []
    filled = 0
    middle = 4 * sample_rate
    for channels in (1, 2):
        clean = _chord(2 * middle, sample_rate, channels)
        for gap_ms, start in ((10, middle), (40, middle), (10, 0)):
            end = start + gap_ms * sample_rate // 1000
            audio = clean.copy()
            audio[:, start:end] = 0.0
            given = audio.copy()
            where = f"{'mono' if channels == 1 else 'stereo'} {gap_ms} ms gap{' at the start' if start == 0 else ''}"
            try:
                fill = repairer.repair(audio, start, end, sample_rate)
            except ValueError as exc:
                assert str(exc), f"the ValueError declining the {where} has no message"
                passed.append(f"{where}: declined with a reason ({exc})")
                continue
            finally:
                assert np.array_equal(audio, given), "repair changed the audio"
            fill = _check_array(fill, (channels, end - start), "fill")
            before = audio[:, start - 1] if start else fill[:, 0]  # no known sample before the file's start
            _check_fill(fill, clean[:, start:end], clean, before, audio[:, end])
            filled += 1
            passed.append(f"{where}: right shape, finite, audible, no jump")
    assert filled, "the repairer declined every gap of a steady chord"
    return passed


def check_frontend(settings) -> list[str]:
    """The front end contract: analysis settings that analyse a chord into ``[channels, n_mels,
    frames]`` finite log-Mel frames and invert them to STFT magnitudes of the right size."""
    _keeps(settings, contracts.MelAnalysis)
    assert isinstance(settings, MelSettings), f"a front end returns melrestore.MelSettings, not {type(settings).__name__}"
    frontend = MelFrontend(settings)
    audio = _chord(settings.samples_for(64), settings.sample_rate, 2)
    log_mel = _check_array(frontend.log_mel(audio), (2, settings.n_mels, settings.frames_for(audio.shape[1])), "log-Mel")
    magnitude = np.asarray(frontend.magnitude(log_mel))
    assert magnitude.shape == (2, settings.n_fft // 2 + 1, log_mel.shape[-1]), f"inverse shape {magnitude.shape}"
    return [f"{settings.sample_rate} Hz, {settings.n_mels} bands: analyses a chord and inverts it"]


def check_dataset(dataset) -> list[str]:
    """The data set contract on a built data set: lists of existing files for both splits, the
    same each time, no file in both, and ``problems`` as lines of text."""
    _keeps(dataset, contracts.Dataset)
    assert all(isinstance(p, str) for p in dataset.problems), "problems must be lines of text"
    splits = {split: dataset.files(split) for split in ("train", "validation")}
    for split, files in splits.items():
        assert isinstance(files, list), f"files({split!r}) returned {type(files).__name__}, not a list"
        assert all(Path(p).is_file() for p in files), f"files({split!r}) names files that do not exist"
        assert files == dataset.files(split), f"files({split!r}) changes from one call to the next"
    assert not set(splits["train"]) & set(splits["validation"]), "a file is in both splits"
    return [f"{len(splits['train'])} training and {len(splits['validation'])} validation files, disjoint, the same each time"]


# The check of each plugin kind, by the kind's key (``melrestore.registry.KINDS``).
CHECKS = {
    "gap_detectors": check_detector,
    "mel_frontends": check_frontend,
    "inpainters": check_inpainter,
    "vocoders": check_vocoder,
    "sample_repairers": check_sample_repairer,
    "datasets": check_dataset,
}
