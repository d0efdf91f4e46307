import json
import re

import matplotlib.image
import numpy as np
import pytest
from click.testing import CliRunner

from conftest import EXAMPLES
from melrestore import audio as audio_io
from melrestore.cli import cli
from melrestore.metrics import gap_metrics, log_spectral_distance, snr


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluation")
    result = CliRunner().invoke(
        cli, ["evaluate", str(EXAMPLES / "clean"), "-o", str(out), "--inpainter", "interpolation", "--gaps", "10,300", "--per-file", "2"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return out, result.output


def test_every_method_is_scored_for_every_gap(evaluation):
    out, output = evaluation
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["methods"] == ["zeros", "lsar", "similarity", "true-mel", "interpolation", "batch-default"]
    assert set(metrics["summary"]["interpolation"]) == {"10", "300"}
    # Up to two gaps of each length in each of the three clips (the 4 s clip has room for fewer).
    assert all(4 <= stats["n"] <= 6 for stats in metrics["summary"]["interpolation"].values())
    for method, by_length in metrics["summary"].items():
        for stats in by_length.values():
            assert stats["changed_outside"] == 0, method
            assert stats["visqol_mos"] is not None and 1 <= stats["visqol_mos"] <= 5
            if method in ("interpolation", "batch-default"):
                assert stats["recall"] == 1.0
    assert "log-spectral distance" in output and "batch-default" in output
    # Filling beats leaving the gap empty, by far: the silent gap is 79 to 97 dB from the music's
    # spectrum, the fills 13 to 14 dB.  ViSQOL barely tells them apart (4.2 for silence on 300 ms gaps).
    for length in ("10", "300"):
        assert metrics["summary"]["zeros"][length]["lsd_db"] > 60
        assert metrics["summary"]["batch-default"][length]["lsd_db"] < 20
        assert metrics["summary"]["batch-default"][length]["log_mel_l1"] < 0.75 * metrics["summary"]["zeros"][length]["log_mel_l1"]
    assert metrics["summary"]["batch-default"]["300"]["visqol_mos"] > metrics["summary"]["zeros"]["300"]["visqol_mos"] + 0.1
    # The true Mel through the same vocoder is the ceiling: far closer than the interpolation on 300 ms gaps.
    ceiling, interpolation = metrics["summary"]["true-mel"]["300"], metrics["summary"]["interpolation"]["300"]
    assert ceiling["log_mel_l1"] < 0.7 * interpolation["log_mel_l1"]
    assert ceiling["lsd_db"] < interpolation["lsd_db"]


def test_numbers_are_recomputed_from_the_written_audio(evaluation):
    out, _ = evaluation
    metrics = json.loads((out / "metrics.json").read_text())
    row = next(r for r in metrics["gaps"] if r["method"] == "interpolation" and r["gap_ms"] == 300)
    clean = audio_io.read(EXAMPLES / "clean" / row["file"].replace(".wav", ".flac")).as_float()
    repaired = audio_io.read(out / "repaired" / "interpolation" / row["file"]).as_float()
    again = gap_metrics(clean, repaired, row["start"], row["end"], row["rate"])
    for key, value in again.items():
        assert value == pytest.approx(row[key], rel=1e-5, abs=1e-6)


def test_metric_definitions():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(4096)
    assert snr(x, x * 0.9) == pytest.approx(20.0, abs=1e-6)
    assert log_spectral_distance(x, x) == 0
    assert log_spectral_distance(x, 2 * x) == pytest.approx(20 * np.log10(2), rel=1e-6)


def test_figures_and_page_are_written_and_open(evaluation):
    out, _ = evaluation
    page = (out / "index.html").read_text()
    for link in re.findall(r"src='([^']+)'", page):
        assert (out / link).is_file(), link
    pictures = list((out / "spectrograms").glob("*.png")) + list((out / "plots").glob("*.png"))
    assert len(pictures) >= 5
    for picture in pictures:
        assert matplotlib.image.imread(picture).shape[2] in (3, 4)


def test_batch_figures(tmp_path):
    # One worker: forking workers from this process, after the evaluation above ran in it under
    # CliRunner, hung in the child; `melrestore batch` in a fresh process does not.
    result = CliRunner().invoke(cli, ["batch", str(EXAMPLES / "recordings"), "-o", str(tmp_path), "--inpainter", "interpolation",
                                      "--figures", "--workers", "1"])
    assert result.exit_code == 0, result.output
    pictures = sorted((tmp_path / "melrestore-figures").glob("*.png"))
    assert len(pictures) == 6  # one per repaired gap
    assert matplotlib.image.imread(pictures[0]).ndim == 3
