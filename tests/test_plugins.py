import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import chord, write
from melrestore.batch import repair_file
from melrestore.engine import Engine
from melrestore.mel import MelSettings
from melrestore.plugins.interpolation import Interpolation
from melrestore.registry import PluginError, Registry

PLUGIN = '''
from melrestore import hookimpl

class Hold:
    """Fills the gap with the last known sample (a real, if poor, vocoder)."""
    def vocode(self, log_mel, segment, missing, frontend):
        out = segment.copy()
        first = missing.argmax()
        out[:, missing] = segment[:, first - 1 : first]
        return out

@hookimpl
def register_vocoders(register):
    register("hold", Hold)
'''


def _install(site, dist: str, module: str, source: str, entry_point: str | None = None) -> None:
    """A minimal installed distribution: a module plus its dist-info with a melrestore entry point
    (named like the module unless ``entry_point`` says otherwise)."""
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"  # wheel naming: no hyphen in the name
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[melrestore]\n{entry_point or module} = {module}\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in ("hold_vocoder", "broken_plugin", "impostor", "my_vocoder"):
        sys.modules.pop(name, None)


def test_third_party_plugins_are_discovered_and_selectable(site):
    _install(site, "melrestore-hold", "hold_vocoder", PLUGIN)
    registry = Registry(allowed="melrestore,melrestore-hold")
    rows = {row["name"]: row for row in registry.describe()}
    assert rows["hold_vocoder"]["distribution"] == "melrestore-hold"
    assert rows["hold_vocoder"]["version"] == "1.2.3"
    assert rows["hold_vocoder"]["hooks"] == ["register_vocoders"]
    assert "hold" in registry.names("vocoders") and "griffin-lim" in registry.names("vocoders")


def test_a_broken_plugin_is_reported_and_the_others_still_load(site):
    _install(site, "melrestore-broken", "broken_plugin", "raise ImportError('needs libfoo')")
    registry = Registry(allowed="melrestore,melrestore-broken")
    rows = {row["name"]: row for row in registry.describe()}
    assert "needs libfoo" in rows["broken_plugin"]["error"]
    assert "griffin-lim" in registry.names("vocoders")


def test_the_readme_plugin_keeps_its_contract_and_repairs_a_file(site, tmp_path):
    """The README's "minimal vocoder plugin, complete", built and installed by pip from its pyproject."""
    from conftest import EXAMPLES, ROOT
    from melrestore.plugins.detectors import DigitalSilence
    from melrestore.testing import check_vocoder

    readme = (ROOT / "README.md").read_text()
    package = tmp_path / "my-vocoder"
    package.mkdir()
    (package / "my_vocoder.py").write_text(readme.split("```python\n# my_vocoder.py\n", 1)[1].split("```", 1)[0])
    pyproject = readme.split("```toml\n# pyproject.toml of the plugin package", 1)[1].split("\n", 1)[1].split("```", 1)[0]
    (package / "pyproject.toml").write_text(pyproject)
    (package / "tests").mkdir()  # where the README's test of it goes: no part of the package
    (package / "tests" / "test_my_vocoder.py").write_text("")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-build-isolation", "--no-deps", "--target", site,
                    package], check=True)
    assert sorted(p.name for p in site.glob("*.py")) == ["my_vocoder.py"]
    registry = Registry(allowed="melrestore,my-vocoder")
    mirror = registry.build("vocoders", "mirror")
    assert len(check_vocoder(mirror)) == 5
    engine = Engine(Interpolation(), mirror, MelSettings(), [DigitalSilence()])
    report = repair_file(engine, EXAMPLES / "recordings" / "mutilated-mime-a.wav", tmp_path / "out.wav")
    assert report.status == "repaired" and [g["status"] for g in report.gaps] == ["repaired"] * 3


def test_a_plugin_named_like_a_builtin_loads_beside_it(site):
    """Entry point names are unique within a distribution only: a third party's `detectors`."""
    _install(site, "melrestore-hold", "hold_vocoder", PLUGIN, entry_point="detectors")
    registry = Registry(allowed="melrestore,melrestore-hold")
    rows = {row["name"]: row for row in registry.describe()}
    assert rows["detectors"]["distribution"] == "melrestore" and rows["detectors"]["error"] is None
    assert rows["melrestore-hold:detectors"]["provides"] == {"vocoders": ["hold"]}
    assert {"digital-silence", "labels"} <= set(registry.names("gap_detectors"))


def test_a_plugin_that_takes_a_builtin_name_fails_alone_and_registers_nothing(site):
    _install(site, "melrestore-impostor", "impostor", PLUGIN.replace('register("hold", Hold)',
                                                                     'register("hold", Hold)\n    register("griffin-lim", Hold)'))
    registry = Registry(allowed="melrestore,melrestore-impostor")
    rows = {row["name"]: row for row in registry.describe()}
    assert "vocoder 'griffin-lim' is already registered by plugin 'griffinlim'" in rows["impostor"]["error"]
    assert "hold" not in registry.names("vocoders")  # none of what it registered
    assert type(registry.build("vocoders", "griffin-lim")).__module__ == "melrestore.plugins.griffinlim"
    assert rows["griffinlim"]["error"] is None


def test_the_environment_variable_restricts_loading(site):
    _install(site, "melrestore-hold", "hold_vocoder", PLUGIN)
    assert "hold" not in Registry(allowed="melrestore").names("vocoders")
    only = Registry(allowed="melrestore-hold")
    assert only.names("vocoders") == ["hold"] and only.names("inpainters") == []


def test_unknown_name_lists_what_exists():
    with pytest.raises(PluginError, match="available: .*griffin-lim"):
        Registry().build("vocoders", "wavenet")


class _NaNVocoder:
    def vocode(self, log_mel, segment, missing, frontend):
        return np.full_like(segment, np.nan)


class _WrongShape:
    def vocode(self, log_mel, segment, missing, frontend):
        return segment[:, :10]


class _Raises:
    def vocode(self, log_mel, segment, missing, frontend):
        raise RuntimeError("out of memory")


@pytest.mark.parametrize("vocoder,message", [(_NaNVocoder(), "NaN"), (_WrongShape(), "shape"), (_Raises(), "out of memory")])
def test_a_misbehaving_vocoder_fails_the_gap_not_the_file(tmp_path, vocoder, message):
    from melrestore import audio as audio_io

    damaged = chord(2.0, 44100, 2)
    damaged[:, 40000:42000] = 0.0
    src = write(tmp_path / "in.wav", damaged, 44100)
    from melrestore.plugins.detectors import DigitalSilence

    engine = Engine(Interpolation(), vocoder, MelSettings(), detectors=[DigitalSilence()])
    report = repair_file(engine, src, tmp_path / "out.wav")
    assert report.status == "failed"
    assert report.gaps[0]["status"] == "failed" and message in report.gaps[0]["message"]
    assert message in report.message
    # Nothing half-done: no output for a file whose only gap failed, and never NaN in one.
    assert not (tmp_path / "out.wav").exists() or np.isfinite(audio_io.read(tmp_path / "out.wav").as_float()).all()


class _RaisingRepairer:
    def repair(self, audio, start, end, sample_rate):
        raise RuntimeError("boom")


class _LongRepairer:
    def repair(self, audio, start, end, sample_rate):
        return np.zeros((audio.shape[0], end - start + 7), dtype=np.float32)


class _TupleDetector:
    def detect(self, audio, sample_rate, path=None):
        return [(40000, 42000)]


@pytest.mark.parametrize("repairer,message", [(_RaisingRepairer(), "long-gap repairer error: boom"),
                                              (_LongRepairer(), "long-gap repairer error: returned shape (2, 2007)")])
def test_a_misbehaving_sample_repairer_fails_its_gap_with_the_reason(tmp_path, repairer, message):
    """Not the whole file with no gap reported (a repairer's bug), nor a silent fall back to the Mel
    pipeline (a fill of the wrong shape): declining is raising ValueError, as the contract says."""
    from melrestore.plugins.detectors import DigitalSilence

    damaged = chord(2.0, 44100, 2)
    damaged[:, 40000:42000] = 0.0
    src = write(tmp_path / "in.wav", damaged, 44100)
    engine = Engine(Interpolation(), None, MelSettings(), detectors=[DigitalSilence()], long_gap_repairer=repairer, long_gap_ms=30)
    report = repair_file(engine, src, tmp_path / "out.wav")
    assert report.status == "failed" and [g["status"] for g in report.gaps] == ["failed"]
    assert message in report.gaps[0]["message"] and not (tmp_path / "out.wav").exists()


def test_a_detector_that_returns_no_gaps_fails_naming_itself(tmp_path):
    damaged = chord(2.0, 44100, 2)
    damaged[:, 40000:42000] = 0.0
    src = write(tmp_path / "in.wav", damaged, 44100)
    report = repair_file(Engine(Interpolation(), None, MelSettings(), detectors=[_TupleDetector()]), src, tmp_path / "out.wav")
    assert report.status == "failed" and "gap detector _TupleDetector returned (40000, 42000), not a Gap" in report.message


def test_the_builtin_vocoder_keeps_the_contract():
    from melrestore.plugins.griffinlim import ConstrainedGriffinLim
    from melrestore.testing import check_vocoder

    assert len(check_vocoder(ConstrainedGriffinLim())) == 6  # and one with a reference


class _Jumpy:
    """Right shape, finite, audible, but it does not meet the known samples."""

    def vocode(self, log_mel, segment, missing, frontend):
        out = segment.copy()
        out[:, missing] = 0.5
        return out


@pytest.mark.parametrize("vocoder,rule", [(_NaNVocoder(), "NaN"), (_WrongShape(), "shape"), (_Jumpy(), "jumps")])
def test_the_contract_catches_broken_vocoders(vocoder, rule):
    from melrestore.testing import check_vocoder

    with pytest.raises(AssertionError, match=rule):
        check_vocoder(vocoder)


def test_the_contract_wants_clear_errors_on_bad_input():
    from melrestore.plugins.griffinlim import ConstrainedGriffinLim
    from melrestore.testing import check_bad_input
    from melrestore.mel import MelFrontend

    class Lenient(ConstrainedGriffinLim):
        def vocode(self, log_mel, segment, missing, frontend):
            return segment.copy()

    with pytest.raises(AssertionError, match="no ValueError"):
        check_bad_input(Lenient(), MelFrontend(MelSettings()))


def test_the_builtin_plugins_keep_their_contracts():
    from melrestore.plugins.detectors import DigitalSilence, LabelFile
    from melrestore.plugins.lsar import LSAR
    from melrestore.plugins.similarity import SimilarityRepair
    from melrestore.testing import check_detector, check_frontend, check_inpainter, check_sample_repairer

    assert len(check_inpainter(Interpolation())) == 1 + 4  # attributes, then 128 and 200 frames, mono and stereo
    assert "1 gap(s)" in check_detector(DigitalSilence())[0] and "0 gap(s)" in check_detector(LabelFile())[0]
    for repairer in (LSAR(), SimilarityRepair()):  # each fills the middle gaps and declines the one at the start
        passed = check_sample_repairer(repairer)
        assert len(passed) == 6 and sum("declined" in line for line in passed) == 2
    assert check_frontend(MelSettings(sample_rate=22050))


class _LoudInpainter(Interpolation):
    def inpaint(self, log_mel, missing):
        return np.where(missing[:, None, :], log_mel.max() + 5, log_mel)


class _ShortInpainter(Interpolation):
    def inpaint(self, log_mel, missing):
        return log_mel[..., 1:]


class _ScribblingInpainter(Interpolation):
    def inpaint(self, log_mel, missing):
        missing[:] = False
        return log_mel


@pytest.mark.parametrize("inpainter,rule", [(_LoudInpainter(), "level"), (_ShortInpainter(), "shape"),
                                            (_ScribblingInpainter(), "changed its inputs")])
def test_the_contract_catches_broken_inpainters(inpainter, rule):
    from melrestore.testing import check_inpainter

    with pytest.raises(AssertionError, match=rule):
        check_inpainter(inpainter)


class _PastTheEnd:
    def detect(self, audio, sample_rate, path=None):
        from melrestore import Gap

        return [Gap(audio.shape[1] - 10, audio.shape[1] + 10, "beyond")]


class _Muting:
    def detect(self, audio, sample_rate, path=None):
        audio[:, :100] = 0.0
        return []


class _ThirdChannel:
    def detect(self, audio, sample_rate, path=None):
        from melrestore import Gap

        return [Gap(100, 200, "a channel the audio lacks", (2,))]


@pytest.mark.parametrize("detector,rule", [(_PastTheEnd(), "not a span inside"), (_Muting(), "changed the audio"),
                                           (_ThirdChannel(), "channels the audio does not have")])
def test_the_contract_catches_broken_detectors(detector, rule):
    from melrestore.testing import check_detector

    with pytest.raises(AssertionError, match=rule):
        check_detector(detector)


class _Offset:
    """Fills every gap with a constant: the right shape, but it jumps at both edges."""

    def repair(self, audio, start, end, sample_rate):
        return np.full((audio.shape[0], end - start), 0.2, dtype=np.float32)


class _Declining:
    def repair(self, audio, start, end, sample_rate):
        raise ValueError("never")


@pytest.mark.parametrize("repairer,rule", [(_Offset(), "jumps"), (_Declining(), "declined every gap")])
def test_the_contract_catches_broken_sample_repairers(repairer, rule):
    from melrestore.testing import check_sample_repairer

    with pytest.raises(AssertionError, match=rule):
        check_sample_repairer(repairer)


def test_the_registry_refuses_an_object_that_breaks_its_contract(site):
    _install(site, "melrestore-hold", "hold_vocoder", PLUGIN.replace("def vocode", "def synthesise"))
    registry = Registry(allowed="melrestore,melrestore-hold")
    with pytest.raises(PluginError, match="vocoder 'hold' .* breaks the vocoder contract: it has no vocode"):
        registry.build("vocoders", "hold")
