"""MP3 (or Ogg) dropouts: how many the detector finds, and how much of each, by default and with
the option ``mp3_smear_ms = 40`` (the numbers in `DigitalSilence`'s docstring and the README).

    python examples/mp3_dropout_study.py CACHE_DIR --json mp3.json [--train-tracks 30] [--format ogg]

Takes the validation tracks of the prepared cache (`examples/prepare_training_data.py`) and its
train tracks (``--train-tracks``: that many, drawn at random; never the test split), decoded from their own
files at their own rate.  Each track is encoded (MP3, or Ogg Vorbis) as it is (every gap found there is a false
alarm), and again with one dropout of each length punched in where the music around it is above
-40 dBFS; then detected with each rule.
Prints, per length, the dropouts missed and the mean share of each one's length found (of all,
and of those found).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import tempfile
import zlib
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import soundfile as sf

from melrestore.audio import AudioFile
from melrestore.plugins.detectors import DigitalSilence

RULES = {"default": {}, "mp3_smear_ms = 40": dict(mp3_smear_ms=40.0)}  # the option does nothing in an Ogg file
LENGTHS_S = [0.05, 0.1, 0.2, 0.4, 1.0, 3.0]
ENCODINGS = {".mp3": ("MP3", "MPEG_LAYER_III"), ".ogg": ("OGG", "VORBIS")}


def encode(audio: np.ndarray, rate: int, path: str) -> None:
    container, subtype = ENCODINGS[Path(path).suffix]
    with sf.SoundFile(path, "w", rate, audio.shape[1], format=container, subtype=subtype) as out:
        for start in range(0, len(audio), rate):  # a second at a time: libsndfile's encoders crash on huge writes
            out.write(audio[start : start + rate])


def detect(path: str, rate: int) -> dict[str, list[tuple[int, int]]]:
    with AudioFile(path) as audio:
        return {name: [(g.start, g.end) for g in DigitalSilence(**options).detect(audio.waveform, rate, path)]
                for name, options in RULES.items()}


def punch(music: np.ndarray, rate: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """One place per length, 4 s apart, where the 20 ms on each side are above -40 dBFS."""
    gaps, edge = [], int(0.02 * rate)
    for seconds in LENGTHS_S:
        n = int(seconds * rate)
        for _ in range(200):
            start = int(rng.integers(rate, len(music) - n - rate))
            if any(abs(start - other) < 4 * rate + n for other, _ in gaps):
                continue
            level = min(np.sqrt(np.mean(music[start - edge : start] ** 2)), np.sqrt(np.mean(music[start + n : start + n + edge] ** 2)))
            if level > 10 ** (-40 / 20):
                gaps.append((start, start + n))
                break
    return gaps


def study(track: dict, suffix: str = ".mp3") -> dict:
    music, rate = sf.read(track["source"], dtype="float32", always_2d=True)
    row = {"track": track["track"], "package": track["package"], "seconds": len(music) / rate, "rate": rate}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "track" + suffix)
        encode(music, rate, path)
        row["clean"] = detect(path, rate)
        row["gaps"] = punch(music, rate, np.random.default_rng(zlib.crc32(track["track"].encode())))
        for start, end in row["gaps"]:
            music[start:end] = 0.0
        encode(music, rate, path)
        row["damaged"] = detect(path, rate)
    return row


def summary(rows: list[dict]) -> None:
    print(f"{len(rows)} tracks, {sum(r['seconds'] for r in rows) / 3600:.2f} hours")
    for name in RULES:
        found = {s: [] for s in LENGTHS_S}
        beyond = 0
        for row in rows:
            for start, end in row["gaps"]:  # a length with no place loud enough has no gap
                seconds = min(LENGTHS_S, key=lambda s: abs(s * row["rate"] - (end - start)))
                hits = [(a, b) for a, b in row["damaged"][name] if b > start and a < end]
                found[seconds].append(sum(min(b, end) - max(a, start) for a, b in hits) / (end - start))
                beyond += sum(max(0, start - a) + max(0, b - end) for a, b in hits)
        false_alarms = sum(len(r["clean"][name]) for r in rows)
        print(f"{name}: {false_alarms} false alarms in the clean tracks, {beyond} samples found past a dropout")
        for seconds, shares in found.items():
            found_ones = [s for s in shares if s > 0]
            print(f"  {1000 * seconds:5.0f} ms: missed {len(shares) - len(found_ones)}/{len(shares)}, mean share found "
                  f"{np.mean(shares):.3f} ({np.mean(found_ones):.3f} of those found)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cache", type=Path)
    parser.add_argument("--train-tracks", type=int, help="that many train tracks, drawn at random (default: all)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--format", choices=["mp3", "ogg"], default="mp3")
    parser.add_argument("--summary", action="store_true", help="only summarise the rows in --json")
    args = parser.parse_args()
    if args.summary:
        return summary(json.loads(args.json.read_text()))
    tracks = json.loads((args.cache / "manifest.json").read_text())["tracks"]
    train = [t for t in tracks if t["split"] == "train"]
    picked = np.random.default_rng(0).choice(len(train), min(args.train_tracks or len(train), len(train)), replace=False)
    chosen = [t for t in tracks if t["split"] == "validation"] + [train[i] for i in picked]
    with Pool(os.cpu_count()) as pool:
        rows = pool.map(functools.partial(study, suffix="." + args.format), chosen, chunksize=1)
    if args.json:
        args.json.write_text(json.dumps(rows))
    summary(rows)


if __name__ == "__main__":
    main()
