"""The vocoder contract, as checks a plugin author can run against their own vocoder.

From pytest::

    from melrestore.testing import check_vocoder

    def test_my_vocoder_keeps_the_contract():
        check_vocoder(MyVocoder())

or from the shell: ``melrestore check-plugin MY-VOCODER``.  Each check runs the vocoder on a
real signal (a chord, mono and stereo, at the shipped analysis settings) and raises
AssertionError naming the broken rule.
"""

from __future__ import annotations

import numpy as np

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


def check_output(vocoder, frontend: MelFrontend, channels: int, gap_ms: float) -> None:
    segment, damaged, missing, log_mel, (start, end) = _case(frontend, channels, gap_ms)
    out = vocoder.vocode(log_mel, damaged, missing, frontend)
    out = np.asarray(out)
    assert out.shape == damaged.shape, f"output shape {out.shape}, expected {damaged.shape} (the segment's)"
    assert np.issubdtype(out.dtype, np.floating), f"output dtype {out.dtype} is not floating point"
    assert np.isfinite(out).all(), "output holds NaN or infinite samples"
    fill = out[:, start:end]
    truth = segment[:, start:end]
    assert np.sqrt(np.mean(fill**2)) > 0.25 * np.sqrt(np.mean(truth**2)), "the fill is (nearly) silent"
    assert np.abs(fill).max() < 4 * np.abs(segment).max(), "the fill is far louder than the music around it"
    step = np.percentile(np.abs(np.diff(segment, axis=1)), 99)
    jump_in = np.abs(fill[:, 0] - damaged[:, start - 1]).max()
    jump_out = np.abs(fill[:, -1] - damaged[:, end]).max()
    assert max(jump_in, jump_out) < 3 * step, (
        f"the fill jumps by {max(jump_in, jump_out):.4f} where it meets the known samples "
        f"(the music's own steps stay below {step:.4f})"
    )


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
    frontend = MelFrontend(settings or MelSettings())
    passed = []
    for channels in (1, 2):
        for gap_ms in (20, 250):
            check_output(vocoder, frontend, channels, gap_ms)
            passed.append(f"{'mono' if channels == 1 else 'stereo'} {gap_ms} ms gap: right shape, finite, audible, no jump")
    check_bad_input(vocoder, frontend)
    passed.append("bad input: clear ValueError")
    return passed
