import numpy as np
import pytest
import torch

from conftest import ROOT, chord, music_excerpt, write
from melrestore import networks
from melrestore.engine import Engine
from melrestore.export import export_onnx, real_inputs_from
from melrestore.mel import MelFrontend, MelSettings
from melrestore.plugins.datasets import CAL500, AudioFolder
from melrestore.registry import get_registry
from melrestore.training import Trainer, TrainConfig, analyse_tracks

CHECKPOINTS = ROOT / "checkpoints"


def _music_like(seconds: float, rate: int, seed: int) -> np.ndarray:
    """Chords that change every half second, with a little noise: real structure to learn from."""
    rng = np.random.default_rng(seed)
    pieces = []
    for _ in range(int(seconds * 2)):
        root = 110 * 2 ** (rng.integers(0, 12) / 12)
        pieces.append(chord(0.5, rate, 1, freqs=(root, root * 1.26, root * 1.5, root * 2)))
    audio = np.concatenate(pieces, axis=1)
    return audio + 0.01 * rng.standard_normal(audio.shape).astype(np.float32)


def test_training_a_few_steps_lowers_the_loss(tmp_path):
    settings = MelSettings(sample_rate=8000, n_fft=256, hop_length=64, n_mels=32)
    tracks = analyse_tracks(
        [write(tmp_path / f"t{i}.wav", _music_like(8, 8000, i), 8000) for i in range(3)], settings, []
    )
    config = TrainConfig(model={"base_channels": 4, "depth": 2}, steps=40, batch_frames=1024,
                         learning_rate=3e-3, validate_every=40, validation_windows=8, max_gap_seconds=0.5)
    losses = []
    trainer = Trainer(config, settings, tracks[:2], tracks[2:], tmp_path / "run", log=lambda _: None)
    assert trainer.windows == (64, 128)  # a 0.5 s gap needs no longer window
    metrics = trainer.run(progress=lambda step, loss: losses.append(loss))
    assert np.mean(losses[-10:]) < np.mean(losses[:10])
    # The untrained network is the interpolation; after training it beats it on a held-out track.
    assert metrics["l1"] < metrics["interp_l1"]
    state = networks.load_checkpoint(tmp_path / "run" / "best.pt")
    assert state["mel_settings"]["sample_rate"] == 8000 and state["metrics"]["l1"] == metrics["l1"]

    resumed = Trainer(TrainConfig(**{**config.__dict__, "steps": 62}), settings, tracks[:2], tracks[2:], tmp_path / "run")
    resumed.resume(tmp_path / "run" / "last.pt")
    assert resumed.step == 40

    # Fine-tuning starts from a checkpoint's weights, on the windows the config names.
    tuned_config = TrainConfig(**{**config.__dict__, "init_from": str(tmp_path / "run" / "best.pt"), "windows": [128]})
    tuned = Trainer(tuned_config, settings, tracks[:2], tracks[2:], tmp_path / "tuned")
    assert tuned.windows == (128,)
    for name, weights in state["state_dict"].items():
        assert torch.equal(tuned.model.state_dict()[name], weights), name


def test_cal500_layout(tmp_path):
    meta = tmp_path / "CAL500_noAudioFeatures"
    meta.mkdir()
    ids = ["abba-s.o.s.", "the_rolling_stones-gimme_shelter", "jay-z-99_problems", "nobody-missing_song"]
    (meta / "songNames.txt").write_text("\n".join(ids) + "\n")
    (meta / "vocab.txt").write_text("Emotion-Angry_/_Aggressive\n")
    audio = tmp_path / "CAL500_32kps" / "mp3"
    audio.mkdir(parents=True)
    for name in ids[:3] + ["stray-file"]:
        write(audio / f"{name}.mp3", chord(0.5, 22050), 22050, fmt="MP3", subtype="MPEG_LAYER_III")

    data = CAL500(tmp_path)
    assert set(data.audio) == {"abba-s.o.s.", "the_rolling_stones-gimme_shelter", "jay-z-99_problems"}
    assert data.audio["abba-s.o.s."].name == "abba-s.o.s..mp3"
    assert "no audio for id 'nobody-missing_song'" in data.problems
    assert any("stray-file" in p for p in data.problems)
    assert sorted(data.files("train") + data.files("validation")) == sorted(data.audio.values())
    assert data.files("validation") == CAL500(tmp_path).files("validation")


def test_folder_split_is_deterministic_and_disjoint(tmp_path):
    for i in range(20):
        write(tmp_path / f"album{i % 3}" / f"song{i}.flac", chord(0.1, 8000), 8000)
    data = AudioFolder(tmp_path)
    train, validation = data.files("train"), data.files("validation")
    assert train and validation and not set(train) & set(validation)
    assert len(train) + len(validation) == 20
    assert validation == AudioFolder(tmp_path).files("validation")


@pytest.mark.parametrize("name", ["unet-44k", "fc-44k"])
def test_export_matches_pytorch(tmp_path, name):
    audio, rate = music_excerpt()
    state = networks.load_checkpoint(CHECKPOINTS / f"{name}.pt")
    settings = MelSettings.from_dict(state["mel_settings"])
    real = real_inputs_from(audio, settings, state["window_frames"][-1], 100)
    report = export_onnx(CHECKPOINTS / f"{name}.pt", tmp_path / f"{name}.onnx", real)
    assert "real" in report and "random_b16_t512" in report
    assert max(report.values()) < 1e-4


def _window_with_gap(frames: int, gap: int):
    audio, rate = music_excerpt()
    frontend = MelFrontend(MelSettings(sample_rate=rate))
    log_mel = frontend.log_mel(audio[:, : frontend.settings.samples_for(frames)])
    missing = np.zeros((2, frames), dtype=bool)
    missing[:, (frames - gap) // 2 : (frames + gap) // 2] = True
    return log_mel, missing


def test_shipped_onnx_unet_runs_and_agrees_with_pytorch():
    registry = get_registry()
    onnx_unet = registry.build("inpainters", "unet-onnx")
    torch_unet = registry.build("inpainters", "unet-torch")
    assert onnx_unet.settings == MelSettings(sample_rate=44100)
    assert onnx_unet.window_frames == (64, 128, 256, 512)
    log_mel, missing = _window_with_gap(256, 90)
    a, b = onnx_unet.inpaint(log_mel, missing), torch_unet.inpaint(log_mel, missing)
    assert np.isfinite(a).all() and np.abs(a - b).max() < 1e-3
    assert np.array_equal(a[:, :, ~missing[0]], log_mel[:, :, ~missing[0]])


def test_shipped_unet_beats_interpolation_on_music_it_never_saw():
    """The example clips come from a track held out of training."""
    unet = get_registry().build("inpainters", "unet-onnx")
    interpolation = get_registry().build("inpainters", "interpolation")
    errors = {"unet": [], "interpolation": []}
    for frames, gap in [(128, 60), (256, 150), (512, 260)]:
        log_mel, missing = _window_with_gap(frames, gap)
        for name, model in (("unet", unet), ("interpolation", interpolation)):
            errors[name].append(np.abs(model.inpaint(log_mel, missing) - log_mel)[:, :, missing[0]].mean())
    assert np.mean(errors["unet"]) < np.mean(errors["interpolation"])


def test_engine_reads_the_analysis_rate_from_the_model():
    engine = Engine(get_registry().build("inpainters", "unet-onnx"), get_registry().build("vocoders", "griffin-lim"),
                    MelSettings(sample_rate=22050))
    assert engine.settings.sample_rate == 44100
    rate = 48000
    clean = chord(3.0, rate, 2)
    damaged = clean.copy()
    from melrestore.gaps import Gap

    gap = Gap(60000, 60000 + rate // 2)
    damaged[:, gap.start : gap.end] = 0.0
    fills, results = engine.repair(damaged, rate, [gap])
    assert results[0].status == "repaired"
    assert np.sqrt(np.mean(fills[gap] ** 2)) > 0.3 * np.sqrt(np.mean(clean[:, gap.start : gap.end] ** 2))


def test_torch_and_onnx_fc_baseline_load():
    fc = get_registry().build("inpainters", "fc-torch")
    assert fc.window_frames == (512,)
    log_mel, missing = _window_with_gap(512, 200)
    out = fc.inpaint(log_mel, missing)
    assert out.shape == log_mel.shape and np.isfinite(out).all()
    assert torch.get_num_threads() >= 1
