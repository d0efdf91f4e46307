"""examples/pack_training_data.py: a prepared cache packed small (Opus) and unpacked again."""

import json
import subprocess
import sys

import numpy as np

from conftest import EXAMPLES, music_excerpt
from melrestore.mel import MelFrontend, MelSettings, resample
from melrestore.plugins.datasets import PreparedCache

SCRIPT = EXAMPLES / "pack_training_data.py"


def _cache(root):
    """A prepared cache of three tracks (the music excerpt, shifted), one of each split."""
    audio, rate = music_excerpt()
    samples = np.round(resample(audio, rate, 44100) * 32767).astype(np.int16)
    tracks = []
    for i, split in enumerate(("train", "validation", "test")):
        decoded = f"decoded/pkg/t{i}.npy"
        (root / "decoded" / "pkg").mkdir(parents=True, exist_ok=True)
        np.save(root / decoded, np.roll(samples, 4410 * i, axis=1))
        tracks.append({"package": "pkg", "track": f"t{i}", "decoded": decoded, "split": split,
                       "channels": 2, "seconds": samples.shape[1] / 44100})
    (root / "manifest.json").write_text(json.dumps({"sample_rate": 44100, "tracks": tracks}))
    return samples


def test_a_packed_cache_unpacks_to_the_same_music_in_mono_without_its_test_tracks(tmp_path):
    samples = _cache(tmp_path / "cache")
    for command in (["pack", tmp_path / "cache", tmp_path / "packed", "--seconds", "3"],
                    ["unpack", tmp_path / "packed", tmp_path / "unpacked"]):
        subprocess.run([sys.executable, SCRIPT, *map(str, command)], check=True, capture_output=True)
    assert sorted(p.name for p in (tmp_path / "packed").glob("*.opus")) == ["pkg--t0.opus", "pkg--t1.opus"]
    cache = PreparedCache(tmp_path / "unpacked")
    assert not cache.problems and not cache.files("test")
    [train] = cache.files("train")
    decoded = np.load(train)
    # The middle 3 s of the track, as one int16 channel at 44.1 kHz.
    assert decoded.dtype == np.int16 and decoded.shape == (1, 3 * 44100)
    start = (samples.shape[1] - 3 * 44100) // 2
    mono = samples[:, start : start + 3 * 44100].astype(np.float32).mean(axis=0) / 32768
    frontend = MelFrontend(MelSettings(44100, 2048, 512, 128))
    original, packed = (frontend.log_mel(x[None])[0] for x in (mono, decoded[0] / 32768))
    assert np.abs(packed - original).mean() < 0.1 * original.std()
    # A budget too small for the training tracks still packs the validation ones.
    subprocess.run([sys.executable, SCRIPT, "pack", tmp_path / "cache", tmp_path / "small", "--seconds", "3",
                    "--validation-seconds", "3", "--megabytes", "0.05"], check=True, capture_output=True)
    assert [p.name for p in (tmp_path / "small").glob("*.opus")] == ["pkg--t1.opus"]


def test_position_packs_another_part_of_each_training_track(tmp_path):
    samples = _cache(tmp_path / "cache")
    mono = samples.astype(np.float32).mean(axis=0) / 32768
    frontend = MelFrontend(MelSettings(44100, 2048, 512, 128))
    for position, start in ((0.0, 0), (1.0, samples.shape[1] - 2 * 44100)):
        packed, unpacked = tmp_path / f"packed-{position}", tmp_path / f"unpacked-{position}"
        for command in (["pack", tmp_path / "cache", packed, "--seconds", "2", "--position", str(position)],
                        ["unpack", packed, unpacked]):
            subprocess.run([sys.executable, SCRIPT, *map(str, command)], check=True, capture_output=True)
        [train] = PreparedCache(unpacked).files("train")
        decoded = frontend.log_mel(np.load(train)[:1] / 32768)[0]
        # Clamped to the track's first or last 2 s, and not the middle.
        wanted, middle = (frontend.log_mel(mono[None, s : s + 2 * 44100])[0]
                          for s in (start, (samples.shape[1] - 2 * 44100) // 2))
        assert np.abs(decoded - wanted).mean() < 0.1 * wanted.std() < np.abs(decoded - middle).mean()
