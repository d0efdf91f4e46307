import html
import json
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import EXAMPLES, chord, write

import melrestore
from melrestore import audio as audio_io
from melrestore.cli import cli
from melrestore.evaluate import COLUMNS, LSAR_MAX_S, METRICS, TrueMelEngine
from melrestore.evaluation_page import paired_differences
from melrestore.figures import gap_spectrograms, metric_plot, paired_difference_plot
from melrestore.gaps import Gap
from melrestore.metrics import gap_metrics
from melrestore.pipeline import PipelineOptions, build_engine


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
    # What made the scores: the version, and the pipeline batch-default ran (its model files among its options).
    assert metrics["melrestore"] == melrestore.__version__ and metrics["pipeline"]["inpainter"] == "interpolation"
    assert set(metrics["summary"]["interpolation"]) == {"10", "300"}
    # Up to two gaps of each length in each of the three clips (the 4 s clip has room for fewer).
    assert all(4 <= stats["n"] <= 6 for stats in metrics["summary"]["interpolation"].values())
    for method, by_length in metrics["summary"].items():
        for length, stats in by_length.items():
            assert stats["changed_outside"] == 0, method
            if method == "lsar" and int(length) > 1000 * LSAR_MAX_S:
                assert all(stats[m] is None for m in METRICS)  # not run on these gaps
                continue
            assert stats["visqol_mos"] is not None and 1 <= stats["visqol_mos"] <= 5
            if method in ("interpolation", "batch-default"):
                assert stats["recall"] == 1.0
    assert "log-spectral distance" in output and "batch-default" in output
    assert "problem: lsar is not scored beyond 60 ms" in output  # without -q the problems are printed too
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


def test_a_16_bit_run_scores_what_16_bit_files_hold(tmp_path):
    # A float recording whose top octave is exactly empty, as a lossy decoder leaves it; as a 16-bit
    # file holds it, that octave is rounding noise, in the truth and in every fill alike.
    rate = 44100
    music = chord(6.0, rate)[0] + 0.02 * np.random.default_rng(0).standard_normal(6 * rate)
    spectrum = np.fft.rfft(music)
    spectrum[np.fft.rfftfreq(len(music), 1 / rate) > 11025] = 0
    write(tmp_path / "in" / "lowpassed.wav", np.fft.irfft(spectrum, len(music))[None], rate, subtype="FLOAT")
    scores = {}
    for bits in ("16", None):
        out = tmp_path / f"out-{bits}"
        result = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "in"), "-o", str(out), "--inpainter", "interpolation", "--gaps", "200",
                                          "--no-visqol", "-q", *(["--bits", bits] if bits else [])], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["subtype"] == ("PCM_16" if bits else "FLOAT")
        files = [out / "damaged" / "lowpassed.wav"] + sorted((out / "repaired").glob("*/lowpassed.wav"))
        assert len(files) == 1 + len(metrics["methods"]) - 1  # every method but `zeros` wrote its file
        snippets = sorted((out / "snippets").glob("*/*.wav"))
        assert len(snippets) == 1 + len(metrics["methods"])  # the original and every method, on the page
        assert {audio_io.read(f).subtype for f in files + snippets} == {metrics["subtype"]}
        row = next(r for r in metrics["gaps"] if r["method"] == "batch-default")
        assert row["changed_outside"] == 0
        # The scores are those of the written files, against the excerpt rounded as they are.
        clean = audio_io.read(tmp_path / "in" / "lowpassed.wav").as_float()
        if bits:
            clean = np.round(clean * 32768) / 32768
        again = gap_metrics(clean, audio_io.read(out / "repaired" / "batch-default" / "lowpassed.wav").as_float(), row["start"], row["end"], rate)
        assert again["lsd_db"] == pytest.approx(row["lsd_db"], rel=1e-5)
        damaged = audio_io.read(out / "damaged" / "lowpassed.wav").as_float()
        outside = np.r_[0 : row["start"], row["end"] : clean.shape[1]]
        assert np.array_equal(clean[:, outside], damaged[:, outside]) and damaged[:, row["start"] : row["end"]].max() == 0
        scores[bits] = {r["method"]: r["lsd_db"] for r in metrics["gaps"] if r["lsd_db"] is not None}  # (LSAR is not scored at 200 ms)
    # Same gaps, same fills but for the rounding, another frame: every score moves.
    assert all(scores["16"][m] != scores[None][m] for m in scores[None])


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
    pictures = sorted((tmp_path / "melrestore-figures").rglob("*.png"))  # more/mutilated-mime-b.flac in more/
    assert len(pictures) == 6  # one per repaired gap
    assert matplotlib.image.imread(pictures[0]).ndim == 3


def test_batch_figures_keep_the_tree_apart_and_a_figure_that_cannot_be_saved_is_a_warning(tmp_path):
    """a/b.wav and a__b.wav each get their own figure (both were named a__b.wav-...); a figure that
    cannot be written leaves the repair as it is, with a warning (it was a message the summary hid)."""
    from melrestore.batch import FIGURES_DIR, run_batch
    from melrestore.reports import human_summary

    clip = EXAMPLES / "recordings" / "mutilated-mime-a.wav"
    for name in ("a/b.wav", "a__b.wav", "c/d.wav"):
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, tmp_path / "in" / name)
    out = tmp_path / "out"
    (out / FIGURES_DIR).mkdir(parents=True)
    (out / FIGURES_DIR / "c").write_text("a file where the figures of c/ would go")
    report = run_batch(tmp_path / "in", out, PipelineOptions(inpainter="interpolation"), workers=1, figures=True)
    assert [f["status"] for f in report["files"]] == ["repaired"] * 3
    gaps = len(report["files"][0]["gaps"])
    assert len(list((out / FIGURES_DIR / "a").glob("b.wav-*.png"))) == gaps
    assert len(list((out / FIGURES_DIR).glob("a__b.wav-*.png"))) == gaps
    (blocked,) = [f for f in report["files"] if f["path"] == "c/d.wav"]
    assert blocked["warnings"] and blocked["warnings"][0].startswith("no figure of its gaps:")
    assert "WARNING c/d.wav: no figure of its gaps:" in human_summary(report)


def test_the_page_has_tables_a_glossary_and_the_problems(evaluation):
    out, _ = evaluation
    page = (out / "index.html").read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    assert page.count("<table>") == len(METRICS)  # ViSQOL ran: every metric has a table
    assert "<pre>" not in page and "lsd_db" not in page.split("<h2>Scores</h2>")[1].split("<h2>Methods</h2>")[0]
    for method in metrics["methods"]:
        assert f"<dt id='m-{method}'>" in page  # each method explained, its table rows link there
    for term in ("LSD (dB)", "SNR (dB)", "log-Mel L1", "ViSQOL MOS-LQO"):
        assert f"<dt>{term}</dt>" in page
    # The short clips leave the similarity repair nothing to copy on some gaps: it says so, and
    # those cells are marked, never ranked best.  LSAR, not run on the 300 ms gaps, says so once.
    declined = [r for r in metrics["gaps"] if r["filled"] is False]
    assert declined and {r["method"] for r in declined} == {"similarity"}
    problems = page.split("<h2>Problems</h2>")[1].split("<h2>")[0]
    assert problems.count("<li>") == len(declined) + 1 and "similarity declined the" in problems
    assert "lsar is not scored beyond 60 ms" in problems
    assert "left silent" in page and "class='unfilled'" in page
    rows = re.findall(r"<tr><th scope='row'><a href='#m-([^']+)'>.*?</tr>", page)
    best_rows = re.findall(r"<tr><th scope='row'><a href='#m-([^']+)'>(?:(?!</tr>).)*class='best'", page)
    assert rows and best_rows and not set(best_rows) & {"zeros", "true-mel"}
    # In every table, the similarity repair's cell of a gap length where it left gaps silent is marked, not bold.
    lengths = list(metrics["summary"]["similarity"])
    unfilled = [i for i, g in enumerate(lengths) if metrics["summary"]["similarity"][g].get("unfilled")]
    assert unfilled
    for table in page.split("<table>")[1:]:
        cells = re.findall(r"<td([^>]*)>", re.search(r"#m-similarity'>.*?</tr>", table).group(0))
        assert len(cells) == len(lengths)
        assert all("class='unfilled'" in cells[i] for i in unfilled)
    # The bold value is the best of the ranked methods in its column (LSD, 300 ms).
    lsd = {m: metrics["summary"][m]["300"]["lsd_db"] for m in ("interpolation", "batch-default")}
    table = page.split("<table>")[1]
    best_method = min(lsd, key=lsd.get)
    assert re.search(rf"#m-{best_method}'>{best_method}</a></th><td[^>]*>[^<]*(<[^t][^>]*>[^<]*)*</td><td class='best'>", table)


def test_plots_read_in_milliseconds_and_keep_lines_apart(evaluation):
    out, _ = evaluation
    metrics = json.loads((out / "metrics.json").read_text())
    fig = metric_plot(metrics["summary"], metrics["methods"], metrics["gaps_ms"], "lsd_db", "LSD", None)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["10", "300"]
    styles = [(line.get_color(), line.get_marker(), line.get_linestyle()) for line in ax.get_lines()]
    assert len(styles) == len(metrics["methods"]) == len(set(styles))
    # Paired differences against the interpolation: the mean and standard error over the same gaps.
    diffs = paired_differences(metrics["gaps"], "lsd_db")
    # Every method but the reference, the floor and the ceiling, on the gaps it filled (on these
    # short clips the similarity repair declines every gap: it has no pairs).
    filled = {r["method"] for r in metrics["gaps"] if r["filled"] is not False} - {"interpolation", "zeros", "true-mel"}
    assert set(diffs) == filled and {"lsar", "batch-default"} <= filled
    pairs = {(r["file"], r["start"]): r["lsd_db"] for r in metrics["gaps"] if r["method"] == "interpolation"}
    mine = [r["lsd_db"] - pairs[(r["file"], r["start"])] for r in metrics["gaps"] if r["method"] == "batch-default" and r["gap_ms"] == 300]
    assert diffs["batch-default"][300] == pytest.approx((np.mean(mine), np.std(mine, ddof=1) / np.sqrt(len(mine))))
    fig = paired_difference_plot(diffs, metrics["gaps_ms"], "LSD difference", None)
    assert len(fig.axes[0].containers) == len(diffs)  # one error-bar series per method
    assert (out / "plots" / "lsd_db-minus-interpolation.png").is_file()


def test_gap_figures_have_a_db_colour_bar_and_a_legend_for_the_gap_edges():
    audio = chord(2.0, 44100)
    damaged = audio.copy()
    damaged[:, 44100:48510] = 0
    fig = gap_spectrograms({"before": damaged, "after": audio}, 44100, 44100, 48510, None, "x.wav: gap, filled by lsar")
    assert "power (dB)" in [ax.get_ylabel() for ax in fig.axes]
    legend = fig.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["gap edges"]
    assert fig.get_suptitle() == "x.wav: gap, filled by lsar"


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
# Appended to a copy of the page: what the browser made of it, once everything has loaded.
PROBE = """<script>addEventListener('load', () => { document.body.dataset.check = JSON.stringify({
  images: document.images.length,
  broken: [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src),
  tables: [...document.querySelectorAll('table')].map(t => t.getBoundingClientRect().width),
  best: document.querySelectorAll('td.best strong').length,
  headings: [...document.querySelectorAll('h2')].map(h => h.textContent),
  players: document.querySelectorAll('audio').length}); });</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: `apt-get install chromium` to check the page in a real browser")
def test_the_page_renders_in_a_headless_browser(evaluation, tmp_path):
    out, _ = evaluation
    probe = out / "browser-probe.html"
    probe.write_text((out / "index.html").read_text().replace("</html>", PROBE + "</html>"))
    browser = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=10000"]
    dom = subprocess.run([*browser, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
    check = json.loads(html.unescape(re.search(r'data-check="([^"]*)"', dom).group(1)))
    assert check["broken"] == [] and check["images"] >= 10  # every plot and spectrogram decoded
    assert len(check["tables"]) == len(METRICS) and min(check["tables"]) > 200
    assert check["best"] >= len(METRICS) and check["players"] >= 4
    assert check["headings"][:3] == ["Problems", "Scores", "Methods"]
    shot = tmp_path / "page.png"
    subprocess.run([*browser, "--window-size=1000,1200", f"--screenshot={shot}", (out / "index.html").as_uri()], capture_output=True, timeout=120)
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (1200, 1000) and pixels[..., :3].std() > 0.05  # a page, not a blank


def test_the_true_mel_ceiling_runs_without_the_extrapolated_edges():
    """With an exact Mel the vocoder recovers the music next to the gap better than the
    extrapolated edges (README, "Short gaps"), so the ceiling leaves them off whatever the
    pipeline says: its fill is the one of a pipeline with them set to 0."""
    rate = 44100
    clean = chord(1.5, rate, 1)
    clean[0] *= np.linspace(0.2, 1.0, clean.shape[1])  # not a steady chord, so the two fills can differ
    gap = Gap(rate // 2, rate // 2 + int(0.05 * rate))
    damaged = clean.copy()
    damaged[:, gap.start : gap.end] = 0.0
    mel_path = PipelineOptions(inpainter="interpolation", short_gap_ms=0, long_gap_ms=0)
    fills = {}
    for edges in (10.0, 0.0):
        ceiling = build_engine(replace(mel_path, edge_extrapolation_ms=edges), TrueMelEngine)
        ceiling.undamaged = clean
        fills[edges] = ceiling.repair(damaged, rate, [gap])[0][gap]
    assert np.array_equal(fills[10.0], fills[0.0])
    # The inpainter's own pipeline does take the edges: there the two settings differ.
    plain = build_engine(replace(mel_path, edge_extrapolation_ms=0.0)).repair(damaged, rate, [gap])[0][gap]
    edged = build_engine(mel_path).repair(damaged, rate, [gap])[0][gap]
    assert not np.array_equal(plain, edged)


def _evaluate(in_dir, out, *options):
    """A quick `melrestore evaluate` run (no ViSQOL, the interpolation alone): the CLI's result."""
    return CliRunner().invoke(cli, ["evaluate", str(in_dir), "-o", str(out), "--inpainter", "interpolation", "--no-visqol", "-q", *options],
                              catch_exceptions=False)


def test_files_that_differ_only_in_their_extension_keep_their_own_names_rows_and_audio(tmp_path):
    rate = 22050
    write(tmp_path / "in" / "a.wav", chord(4.0, rate), rate)
    write(tmp_path / "in" / "a.flac", chord(4.0, rate, freqs=(440.0, 554.4)), rate)
    result = _evaluate(tmp_path / "in", tmp_path / "out", "--gaps", "50")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    rows = [r for r in metrics["gaps"] if r["method"] == "zeros"]
    assert sorted(r["file"] for r in rows) == ["a.flac.wav", "a.wav.wav"]  # two files, told apart
    assert metrics["files"] == {"a.flac.wav": "a.flac", "a.wav.wav": "a.wav"}
    for row in rows:
        clean = audio_io.read(tmp_path / "in" / metrics["files"][row["file"]]).as_float()
        damaged = audio_io.read(tmp_path / "out" / "damaged" / row["file"]).as_float()
        outside = np.r_[0 : row["start"], row["end"] : clean.shape[1]]
        assert np.array_equal(damaged[:, outside], clean[:, outside])  # each file's damaged copy is its own
        # The page plays each gap's own original.
        snippet = audio_io.read(tmp_path / "out" / "snippets" / f"{Path(row['file']).stem}-{row['start']}" / "original.wav").as_float()
        assert np.array_equal(snippet, clean[:, row["start"] - rate : row["end"] + rate])


def test_the_report_folder_must_not_overlap_the_recordings(tmp_path):
    # A report inside the input would be scored as clean recordings by the next run.
    write(tmp_path / "in" / "a.wav", chord(4.0, 22050), 22050)
    for out, refusal in ((tmp_path / "in" / "eval", "must not be the input folder"), (tmp_path, "must not be inside OUT")):
        result = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "in"), "-o", str(out), "--no-visqol"])
        assert result.exit_code == 2 and refusal in result.output
        assert not (out / "metrics.json").exists() and not (out / "damaged").exists()


def test_a_report_folder_holding_an_earlier_run_is_refused_and_overwrite_clears_that_run_alone(tmp_path):
    write(tmp_path / "in" / "a.wav", chord(5.0, 22050), 22050)
    out = tmp_path / "out"
    assert _evaluate(tmp_path / "in", out, "--gaps", "100").exit_code == 0
    earlier = (out / "metrics.json").read_bytes()
    old_starts = {r["start"] for r in json.loads(earlier)["gaps"]}
    result = _evaluate(tmp_path / "in", out, "--gaps", "100", "--seed", "5")
    assert result.exit_code == 2, result.output
    assert result.output.splitlines()[-1] == (f"Error: {out} holds an earlier evaluation (metrics.json, metrics.csv, index.html, damaged, "
                                              "repaired, snippets, spectrograms, plots): --overwrite to replace it")
    assert (out / "metrics.json").read_bytes() == earlier
    # A run stopped before its metrics.json leaves its folders: refused as well, before a file is read.
    (tmp_path / "stopped" / "damaged").mkdir(parents=True)
    result = _evaluate(tmp_path / "in", tmp_path / "stopped", "--gaps", "100")
    assert result.exit_code == 2 and "holds an earlier evaluation (damaged): --overwrite" in result.output, result.output
    assert [p.name for p in (tmp_path / "stopped").iterdir()] == ["damaged"]
    # --overwrite: every file the earlier run wrote goes (a method add_method.py added to it too),
    # what else is in the folder stays, and only the new run's files are left.
    shutil.copy(out / "repaired" / "interpolation" / "a.wav", out / "repaired" / "added-later.wav")
    (out / "notes.txt").write_text("mine")
    result = _evaluate(tmp_path / "in", out, "--gaps", "100", "--seed", "5", "--overwrite")
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    starts = {r["start"] for r in metrics["gaps"]}
    assert metrics["seed"] == 5 and starts and not starts & old_starts
    assert sorted(p.name for p in (out / "snippets").iterdir()) == [f"a-{start}" for start in sorted(starts)]
    assert sorted(p.name for p in (out / "spectrograms").iterdir()) == [f"a-{start}.png" for start in sorted(starts)]
    assert sorted(p.name for p in (out / "repaired").iterdir()) == sorted(set(metrics["methods"]) - {"zeros"})
    assert (out / "notes.txt").read_text() == "mine"


def test_a_folder_where_no_file_can_be_read_fails_naming_each_and_keeps_the_earlier_report(tmp_path):
    # As batch fails a file it cannot read (exit status 1, the reason named): a report of no file
    # would pass for a finished run.
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.wav").write_bytes(b"")
    (tmp_path / "in" / "y.flac").write_bytes(np.random.default_rng(0).bytes(3000))
    result = _evaluate(tmp_path / "in", tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert result.output.splitlines() == [
        f"{tmp_path / 'in' / 'x.wav'}: cannot read audio: the file is empty (0 bytes)",
        f"{tmp_path / 'in' / 'y.flac'}: cannot read audio: Error opening {str(tmp_path / 'in' / 'y.flac')!r}: Format not recognised.",
        f"Error: none of the 2 audio files below {tmp_path / 'in'} could be read: nothing written",
    ]
    assert not (tmp_path / "out").exists()
    # Nothing read, nothing replaced: an earlier report stays whole, --overwrite or not.
    write(tmp_path / "good" / "a.wav", chord(5.0, 22050), 22050)
    assert _evaluate(tmp_path / "good", tmp_path / "out", "--gaps", "100").exit_code == 0
    before = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    result = _evaluate(tmp_path / "in", tmp_path / "out", "--overwrite")
    assert result.exit_code == 1 and "could be read: nothing written" in result.output, result.output
    assert {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()} == before


def test_lsar_is_not_scored_beyond_60_ms_and_the_page_says_so(tmp_path):
    write(tmp_path / "in" / "a.wav", chord(5.0, 22050), 22050)
    result = _evaluate(tmp_path / "in", tmp_path / "out", "--gaps", "20,100")
    assert result.exit_code == 0 and result.output == "", result.output  # -q prints only errors: the problems are on the page
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    lsar = {r["gap_ms"]: r for r in metrics["gaps"] if r["method"] == "lsar"}
    assert lsar[20]["filled"] and lsar[20]["lsd_db"] is not None
    assert lsar[100]["filled"] is None and all(lsar[100][m] is None for m in METRICS)  # not run: no scores, not a failure
    assert metrics["summary"]["lsar"]["100"]["unfilled"] == 0
    page = (tmp_path / "out" / "index.html").read_text()
    problems = page.split("<h2>Problems</h2>")[1].split("<h2>")[0]
    assert "lsar is not scored beyond 60 ms" in problems and "its files leave the 100 ms gaps silent" in problems
    assert "run and scored on the gaps up to 60 ms" in page.split("<dt id='m-lsar'>")[1].split("</dd>")[0]


def test_a_gap_length_that_fits_in_no_file_is_a_problem_and_the_report_keeps_its_shape(tmp_path):
    write(tmp_path / "in" / "a.wav", chord(5.0, 22050), 22050)
    result = _evaluate(tmp_path / "in", tmp_path / "out", "--gaps", "10000")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["gaps"] == [] and metrics["files"] == {"a.wav": "a.wav"}
    assert metrics["problems"] == ["no room for a gap of 10000 ms in a.wav (5.00 s; gaps keep a second from the edges and from each other)"]
    assert (tmp_path / "out" / "metrics.csv").read_text().splitlines() == [",".join(COLUMNS)]
    page = (tmp_path / "out" / "index.html").read_text()
    assert "<p>1 clean file;" in page and "no room for a gap of 10000 ms in a.wav" in page.split("<h2>Problems</h2>")[1].split("<h2>")[0]


def test_a_detection_wider_than_the_gap_over_the_music_s_own_silence_counts_as_found_and_filled(tmp_path):
    # A half-wave rectified tone: half of every millisecond is digital silence (too short to be a
    # gap), so a gap punched next to such a stretch is detected (and filled) a few samples wider.
    rate = 22050
    tone = np.maximum(0.5 * np.sin(2 * np.pi * 1000 * np.arange(6 * rate) / rate), 0)[None]
    write(tmp_path / "in" / "a.wav", tone, rate)
    result = _evaluate(tmp_path / "in", tmp_path / "out", "--gaps", "50,100")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    rows = [r for r in metrics["gaps"] if r["method"] in ("interpolation", "batch-default")]
    assert any(tone[0, r["start"] - 1] == 0 for r in rows)  # this gap is found starting before it
    assert all(r["detected"] and r["filled"] for r in rows)
