from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnxruntime as ort
import pytest
import soundfile as sf
import torch

from conftest import EXAMPLES, ROOT, chord, loop, music_excerpt, music_like, write
from melrestore import networks, states
from melrestore.engine import Engine
from melrestore.export import export_onnx, real_inputs_from
from melrestore.mel import MelFrontend, MelSettings, window_for_gap
from melrestore.plugins.datasets import CAL500, AudioFolder
from melrestore.registry import get_registry
from melrestore.gaps import Gap
from melrestore.training import Adversary, Trainer, TrainConfig, WindowSampler, _to_tensors, load_tracks, masked_l1

CHECKPOINTS = ROOT / "checkpoints"


SMALL = MelSettings(sample_rate=8000, n_fft=256, hop_length=64, n_mels=32)


def _small_tracks(tmp_path):
    return load_tracks([write(tmp_path / f"t{i}.wav", music_like(8, 8000, i, intervals=(1, 1.26, 1.5, 2), noise=0.01), 8000) for i in range(3)], SMALL, [])


def test_training_a_few_steps_beats_interpolation(tmp_path):
    tracks = _small_tracks(tmp_path)
    config = TrainConfig(model={"base_channels": 4, "depth": 2, "in_channels": 3}, steps=60, batch_frames=1024,
                         learning_rate=3e-3, validate_every=20, validation_windows=8, max_gap_seconds=0.35)
    trainer = Trainer(config, SMALL, tracks[:2], tracks[2:], tmp_path / "run", log=lambda _: None)
    assert trainer.windows == (64, 128)  # a 0.35 s gap needs no longer window
    metrics = trainer.run()
    # The untrained network is the interpolation; after training it beats it on a held-out track.
    assert metrics["l1"] < metrics["interp_l1"]
    assert trainer.history[-1]["l1"] < trainer.history[0]["l1"]
    meta = states.load_checkpoint(tmp_path / "run" / "best.pt").meta
    assert meta.settings.sample_rate == 8000 and meta.metrics["l1"] == min(h["l1"] for h in trainer.history)

    resumed = Trainer(TrainConfig(**{**config.__dict__, "workers": 1}), SMALL, tracks[:2], tracks[2:], tmp_path / "run")
    resumed.resume(tmp_path / "run" / "last.pt")  # how the run is carried out may change
    assert resumed.step == 60
    # What it learns may not: the learning-rate schedule is fitted to its steps, the data to its seed.
    for changed in ({"steps": 62}, {"seed": 7}, {"learning_rate": 0.05}):
        other = Trainer(TrainConfig(**{**config.__dict__, **changed}), SMALL, tracks[:2], tracks[2:], tmp_path / "run")
        with pytest.raises(ValueError, match=f"trained with other settings \\({next(iter(changed))} differ"):
            other.resume(tmp_path / "run" / "last.pt")
    # Nor its data: a track fewer, or the same tracks in another order (the sampler draws them by place).
    for train in (tracks[:1], tracks[1::-1]):
        with pytest.raises(ValueError, match="the training or validation data differs"):
            Trainer(config, SMALL, train, tracks[2:], tmp_path / "run").resume(tmp_path / "run" / "last.pt")
    Trainer(config, SMALL, [track.copy() for track in tracks[:2]], tracks[2:], tmp_path / "run").resume(tmp_path / "run" / "last.pt")


def test_a_checkpoint_save_that_fails_midway_leaves_the_previous_one_whole(tmp_path, monkeypatch):
    """A run killed while saving, or a full disk: last.pt and best.pt are written aside, then renamed."""
    from melrestore import training

    path = tmp_path / "last.pt"
    training._save({"step": 4}, path)
    before = path.read_bytes()

    def half_written(obj, f):
        Path(f).write_bytes(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(training.torch, "save", half_written)
    with pytest.raises(OSError):
        training._save({"step": 6}, path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_batches_drawn_by_worker_processes_train_the_same_weights(tmp_path):
    tracks = _small_tracks(tmp_path)
    config = TrainConfig(model={"base_channels": 4, "depth": 2, "in_channels": 7}, steps=6, batch_frames=512,
                         validate_every=6, validation_windows=2, max_gap_seconds=0.35, references=2)
    weights = []
    for workers in (0, 2):
        trainer = Trainer(TrainConfig(**{**config.__dict__, "workers": workers}), SMALL, tracks[:2], tracks[2:],
                          tmp_path / f"w{workers}", log=lambda _: None)
        trainer.run()
        weights.append(torch.cat([p.detach().flatten() for p in trainer.model.parameters()]))
    assert trainer.step == 6 and not torch.equal(weights[0], torch.zeros_like(weights[0]))
    assert torch.allclose(weights[0], weights[1], atol=1e-6)


def test_a_run_out_of_minutes_validates_saves_and_stops(tmp_path):
    tracks = _small_tracks(tmp_path)
    lines = []
    config = TrainConfig(model={"base_channels": 4, "depth": 2}, steps=1000, batch_frames=512, validate_every=500,
                         validation_windows=2, max_gap_seconds=0.35, max_minutes=1e-6)
    trainer = Trainer(config, SMALL, tracks[:2], tracks[2:], tmp_path / "run", log=lines.append)
    trainer.run()
    assert trainer.step == 1 and [h["step"] for h in trainer.history] == [1]
    assert states.load_checkpoint(tmp_path / "run" / "last.pt", weights_only=False).extra["step"] == 1
    assert "stopped after" in lines[-1]


def test_the_critic_learns_to_tell_a_straight_line_from_music_and_pulls_only_on_the_gap(tmp_path):
    # A drum loop: a straight line across a gap of 0.2 to 0.35 s draws over the hits a listener misses.
    tracks = load_tracks([write(tmp_path / f"loop{i}.wav", loop(8, 16000, i), 16000) for i in range(2)], SMALL, [])
    sampler = WindowSampler(tracks, SMALL, (64, 128), 4, 0.35, seed=0)
    torch.manual_seed(0)
    adversary = Adversary(TrainConfig(adversarial_weight=1.0, feature_matching_weight=1.0, learning_rate=2e-3),
                          torch.device("cpu"), distributed=False)

    def judged(batch):  # the critic's mean score over the gap's patches: the truth, and the interpolation's straight line
        inputs, target, mask = _to_tensors(*batch, 2)
        with torch.no_grad():
            return [adversary._masked_mean(adversary.critic(adversary._window(x, target, inputs[:, :1], mask))[0], mask).item()
                    for x in (target, torch.zeros_like(target))]

    for _ in range(30):
        inputs, target, mask = _to_tensors(*sampler.batch(128, 8), 2)
        adversary.critic_step(torch.zeros_like(target), target, inputs[:, :1], mask)
    real, line = judged(sampler.batch(128, 16))  # windows it never saw
    assert real - line > 0.3

    prediction = torch.zeros_like(target, requires_grad=True)
    adversary.inpainter_loss(prediction, target, inputs[:, :1], mask, step=0).backward()
    pull = prediction.grad.abs().sum(dim=(1, 2))  # [windows, frames]
    assert (pull[~mask] == 0).all() and (pull[mask] > 0).float().mean() > 0.9


def test_an_adversarial_run_saves_its_critic_and_resumes_it(tmp_path):
    tracks = _small_tracks(tmp_path)
    config = TrainConfig(model={"base_channels": 4, "depth": 2, "in_channels": 3}, steps=4, batch_frames=512,
                         validate_every=4, validation_windows=2, max_gap_seconds=0.35,
                         adversarial_weight=0.1, feature_matching_weight=1.0, critic_warmup=2)
    trainer = Trainer(config, SMALL, tracks[:2], tracks[2:], tmp_path / "run", log=lambda _: None)
    start = [p.detach().clone() for p in trainer.adversary.critic.parameters()]
    trainer.run()
    trained = trainer.adversary.critic.state_dict()
    assert any(not torch.equal(a, b) for a, b in zip(start, trained.values()))
    resumed = Trainer(config, SMALL, tracks[:2], tracks[2:], tmp_path / "run", log=lambda _: None)
    resumed.resume(tmp_path / "run" / "last.pt")
    assert all(torch.equal(trained[k], v) for k, v in resumed.adversary.critic.state_dict().items())
    assert resumed.adversary.optimizer.state_dict()["state"]  # Adam's moments came back too


def test_fine_tuning_can_add_the_damaged_window_plane(tmp_path):
    tracks = _small_tracks(tmp_path)
    config = TrainConfig(model={"base_channels": 4, "depth": 2}, steps=40, batch_frames=1024,
                         validate_every=40, validation_windows=4, max_gap_seconds=0.5)
    Trainer(config, SMALL, tracks[:2], tracks[2:], tmp_path / "run", log=lambda _: None).run()
    tuned_config = TrainConfig(**{**config.__dict__, "init_from": str(tmp_path / "run" / "best.pt"), "windows": [128],
                                  "model": {**config.model, "in_channels": 3}})
    tuned = Trainer(tuned_config, SMALL, tracks[:2], tracks[2:], tmp_path / "tuned")
    assert tuned.windows == (128,)
    # Before fine-tuning, the widened network computes exactly what the two-plane one did.
    original = states.load_checkpoint(tmp_path / "run" / "best.pt").model()
    inputs, _, _ = _to_tensors(*tuned.validation[128], planes=3)
    with torch.no_grad():
        assert torch.allclose(tuned.model(inputs), original(inputs[:, :2]), atol=1e-6)


def test_the_loss_weighs_a_short_gap_like_a_long_one():
    missing = torch.zeros(2, 100, dtype=torch.bool)
    missing[0, 10:12] = True  # a short gap, missed by 1 everywhere
    missing[1, 10:90] = True  # a long gap, hit exactly
    target = torch.zeros(2, 1, 8, 100)
    prediction = target.clone()
    prediction[0] += 1.0
    assert masked_l1(prediction, target, missing).item() == pytest.approx(0.5)
    assert masked_l1(prediction, target, missing, per_window=False).item() == pytest.approx(2 / 82)


@pytest.mark.parametrize("gap_lengths", ["log-uniform", "uniform"])
def test_training_windows_are_cut_as_the_engine_cuts_them(tmp_path, gap_lengths):
    tracks = _small_tracks(tmp_path)
    sampler = WindowSampler(tracks, SMALL, (64, 128, 256), context=16, max_gap_seconds=0.5, seed=0, gap_lengths=gap_lengths)
    assert sampler.windows == (64, 128, 256)
    sizes_only = SimpleNamespace(settings=SMALL, window_frames=(64, 128, 256), max_gap_seconds=0.5)
    engine = Engine(sizes_only, None, SMALL, context_frames=16)
    for window in sampler.windows:
        clean, damaged, missing, _, _ = sampler.batch(window, 32)
        assert clean.shape == damaged.shape == (32, 32, window)
        known = ~missing[:, None, :].repeat(32, axis=1)
        assert np.array_equal(clean[known], damaged[known])  # only frames overlapping the gap differ
        for frames in missing.sum(axis=1):
            assert frames + 2 * 16 <= window
        # The gap lengths this window trains on are those the engine sends to it.
        low, high = sampler.gap_bounds[window]
        assert engine.choose(Gap(0, low), SMALL.sample_rate).window_frames == window
        assert engine.choose(Gap(0, high), SMALL.sample_rate).window_frames == window
    with pytest.raises(ValueError, match="gap_lengths"):
        WindowSampler(tracks, SMALL, (64,), context=16, max_gap_seconds=0.5, seed=0, gap_lengths="normal")


def test_dense_windows_hold_other_gaps_apart_from_their_own(tmp_path):
    tracks = _small_tracks(tmp_path)
    sampler = WindowSampler(tracks, SMALL, (128, 256), context=16, max_gap_seconds=0.5, seed=0, references=2,
                            other_gaps_per_minute=120)
    sampler.OTHER_GAP_DISTANCE_S = 0.25
    apart = round(0.25 * SMALL.sample_rate)
    rng = np.random.default_rng(0)
    length, own = SMALL.samples_for(256), (7000, 8000)
    counts = []
    for _ in range(400):
        mask = sampler._other_gaps(rng, length, *own)
        edges = np.flatnonzero(np.diff(np.r_[False, mask, False]))
        runs = list(zip(edges[::2], edges[1::2]))
        counts.append(len(runs))
        assert not mask[own[0] - apart : own[1] + apart].any()
        # Gaps are apart from each other (a run that reaches the window's end may be cut there).
        assert all(b_lo - a_hi >= apart for (_, a_hi), (b_lo, _) in zip(runs, runs[1:]))
    assert 0 < np.mean(counts) < 120 / 60 * length / SMALL.sample_rate  # the rate, less the draws that did not fit
    # Windows are cut as before, now with more than one gap in some; only missing frames differ.
    clean, damaged, missing, references, quality = sampler.batch(256, 32)
    runs_per_window = [np.sum(np.diff(np.r_[0, m.astype(int), 0]) == 1) for m in missing]
    assert min(runs_per_window) == 1 and max(runs_per_window) > 1
    known = ~missing[:, None, :].repeat(SMALL.n_mels, axis=1)
    assert np.array_equal(clean[known], damaged[known])
    assert references.shape == (32, 2, SMALL.n_mels, 256) and (quality > 0).all()
    # The gaps punched into the references are drawn over, as the engine does, never handed on as silence.
    silent = references.max(axis=2) <= np.log(SMALL.log_floor) + 0.01
    assert not silent.any()
    single = WindowSampler(tracks, SMALL, (128, 256), context=16, max_gap_seconds=0.5, seed=0, references=2)
    assert all(np.sum(np.diff(np.r_[0, m.astype(int), 0]) == 1) == 1 for m in single.batch(256, 32)[2])


def test_longer_gaps_get_more_known_context():
    settings = MelSettings()  # the shipped 44.1 kHz analysis
    frames = lambda seconds: settings.missing_frames_for(round(seconds * settings.sample_rate))  # noqa: E731
    sizes = (128, 256, 512)
    assert window_for_gap(frames(0.05), sizes, 16) == 128
    # 1 s touches 92 frames: a 128-frame window would leave 18 known each side, a 256-frame one 82.
    assert frames(1.0) == 92 and window_for_gap(frames(1.0), sizes, 16) == 256
    # 3 s cannot have half its length each side in 512 frames; 16 frames each side will do.
    assert window_for_gap(frames(3.0), sizes, 16) == 512
    assert window_for_gap(frames(3.0), (128, 256), 16) is None


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
    saved = states.load_checkpoint(CHECKPOINTS / f"{name}.pt")
    real = real_inputs_from(audio, rate, saved.meta)
    out = tmp_path / f"{name}.onnx"
    report = export_onnx(CHECKPOINTS / f"{name}.pt", out, real)
    assert "real" in report and "random_b16_t512" in report
    assert max(report.values()) < 1e-4
    # The report compares PyTorch with the file written: two runtimes never agree to the last bit.
    with torch.inference_mode():
        expected = saved.model()(torch.from_numpy(real)).numpy()
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"input": real})[0]
    assert 0 < report["real"] == pytest.approx(float(np.abs(expected - got).max()), rel=1e-6)
    # The fresh file carries what the inpainter plugin needs, and runs there as the shipped one does.
    fresh = get_registry().build("inpainters", f"{name.split('-')[0]}-onnx", model_file=str(out))
    shipped = get_registry().build("inpainters", f"{name.split('-')[0]}-onnx")
    assert (fresh.settings, fresh.window_frames, fresh.max_gap_seconds) == (shipped.settings, shipped.window_frames, shipped.max_gap_seconds)
    _, damaged, missing = _window_with_gap(fresh.window_frames[-1], 1.0)
    np.testing.assert_allclose(fresh.inpaint(damaged, missing), shipped.inpaint(damaged, missing), atol=1e-3)


@pytest.mark.parametrize("back_end, suffix", [("torch", "pt"), ("onnx", "onnx")])
def test_each_back_end_runs_the_model_file_its_option_names(back_end, suffix):
    # The FC's file through the U-Net's name: the FC's window, not the U-Net's.
    build = get_registry().build
    chosen = build("inpainters", f"unet-{back_end}", model_file=str(CHECKPOINTS / f"fc-44k.{suffix}"))
    assert chosen.window_frames == build("inpainters", f"fc-{back_end}").window_frames
    assert chosen.window_frames != build("inpainters", f"unet-{back_end}").window_frames


def _window_with_gap(frames: int, gap_seconds: float):
    """A window of the example clip cut as the engine cuts it: the gap's samples zeroed, every
    frame overlapping them missing.  -> (clean log-Mel, damaged log-Mel, missing frames)."""
    audio, rate = music_excerpt()
    frontend = MelFrontend(MelSettings(sample_rate=rate))
    clean = audio[:, : frontend.settings.samples_for(frames)]
    gap = np.zeros(clean.shape[1], dtype=bool)
    gap[(len(gap) - round(gap_seconds * rate)) // 2 :][: round(gap_seconds * rate)] = True
    return frontend.log_mel(clean), *frontend.analyse_with_gap(clean, gap)


def test_third_plane_shows_what_is_left_of_partly_known_frames():
    _, damaged, missing = _window_with_gap(128, 0.2)
    plane = networks.prepare(damaged, missing, planes=3)[0][:, 2]
    assert not plane[:, :, ~missing[0]].any()  # nothing outside the gap
    gap_frames = np.flatnonzero(missing[0])
    # Frames wholly inside the gap are silent: far below the interpolation, down to the clip.
    # The gap's edge frames still hold most of their music: near the interpolation.
    middle = plane[:, :, gap_frames[len(gap_frames) // 2]]
    assert np.median(middle) < -2.0 and middle.min() == -networks.DAMAGED_CLIP
    for edge in (gap_frames[0], gap_frames[-1]):
        assert np.median(plane[:, :, edge]) > -1.0


def test_shipped_onnx_unet_runs_and_agrees_with_pytorch():
    registry = get_registry()
    onnx_unet = registry.build("inpainters", "unet-onnx")
    torch_unet = registry.build("inpainters", "unet-torch")
    assert onnx_unet.settings == MelSettings(sample_rate=44100)
    assert onnx_unet.window_frames == (128, 256, 512)
    _, damaged, missing = _window_with_gap(256, 1.0)
    a, b = onnx_unet.inpaint(damaged, missing), torch_unet.inpaint(damaged, missing)
    assert np.isfinite(a).all() and np.abs(a - b).max() < 1e-3
    assert np.array_equal(a[:, :, ~missing[0]], damaged[:, :, ~missing[0]])


def test_shipped_unet_fills_a_repeated_section_far_better_than_interpolation():
    """Music repeats: a verse played twice, the second time with a dropout.  Through the engine
    (retrieval, inpainting, vocoder), the shipped U-Net puts back what the first time played."""
    from melrestore.pipeline import PipelineOptions, build_engine

    clips = [sf.read(EXAMPLES / "clean" / f"mutilated-mime-{c}.flac", dtype="float32", always_2d=True)[0].T for c in "ab"]
    song = np.concatenate(clips + clips, axis=1)
    rate = 44100
    frontend = MelFrontend(MelSettings(sample_rate=rate))
    errors = {}
    for name in ("unet-onnx", "interpolation"):
        engine = build_engine(PipelineOptions(inpainter=name, short_gap_ms=0.0, long_gap_ms=0.0))
        errors[name] = []
        for start_s, gap_s in ((13.0, 0.4), (19.0, 1.5)):  # inside the second playing of clips a and b
            gap = Gap(int(start_s * rate), int((start_s + gap_s) * rate))
            damaged = song.copy()
            damaged[:, gap.start : gap.end] = 0.0
            fills, results = engine.repair(damaged, rate, [gap])
            assert results[0].status == "repaired"
            damaged[:, gap.start : gap.end] = fills[gap]
            inside = slice(gap.start, gap.end)
            errors[name].append(np.abs(frontend.log_mel(damaged[:, inside]) - frontend.log_mel(song[:, inside])).mean())
    assert np.mean(errors["unet-onnx"]) < 0.8 * np.mean(errors["interpolation"]), errors


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
    _, damaged, missing = _window_with_gap(512, 1.0)
    out = fc.inpaint(damaged, missing)
    assert out.shape == damaged.shape and np.isfinite(out).all()
    assert torch.get_num_threads() >= 1


def test_log_uniform_gap_lengths_favour_short_gaps(tmp_path):
    tracks = _small_tracks(tmp_path)
    medians = {}
    for draw in ("log-uniform", "uniform"):
        sampler = WindowSampler(tracks, SMALL, (128,), context=16, max_gap_seconds=1.0, seed=0, gap_lengths=draw)
        medians[draw] = np.median(sampler.batch(128, 200)[2].sum(axis=1))
    assert medians["log-uniform"] < 0.6 * medians["uniform"]


def test_a_model_file_of_another_version_or_kind_is_refused_in_one_line(tmp_path):
    model = networks.build("unet", {"n_mels": 32, "base_channels": 4, "depth": 2})
    meta = states.ModelMeta("unet", model.config, (64, 128), 0.5, SMALL, references=0, metrics={"l1": 0.2})
    torch.save(states.checkpoint_dict(meta, model, step=3), tmp_path / "now.pt")
    saved = states.load_checkpoint(tmp_path / "now.pt")
    assert saved.meta == meta and saved.extra == {"step": 3}
    with torch.no_grad():  # the weights round-trip
        assert torch.equal(saved.model()(torch.ones(1, 2, 32, 64)), model.eval()(torch.ones(1, 2, 32, 64)))
    for change, message in (({"format": "melrestore-checkpoint-2"}, "of version 2; this melrestore reads version 1"),
                            ({"format": "demucs-3"}, "is not a melrestore checkpoint"),
                            ({"architecture": "wavenet"}, "holds a 'wavenet' network; this melrestore knows unet, fc")):
        torch.save({**states.checkpoint_dict(meta, model), **change}, tmp_path / "other.pt")
        with pytest.raises(states.ModelFileError, match=message):
            states.load_checkpoint(tmp_path / "other.pt")
    # The shipped ONNX files were exported before the metadata named its format: they are version 1.
    assert states.read_onnx_meta(CHECKPOINTS / "unet-44k.onnx") == states.load_checkpoint(CHECKPOINTS / "unet-44k.pt").meta
