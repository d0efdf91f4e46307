"""Pack a prepared training cache small enough to travel to a GPU machine, and unpack it there.

    python examples/pack_training_data.py pack ~/melrestore-data packed/ --megabytes 45
    python examples/pack_training_data.py unpack packed/ /tmp/melrestore-data     # on the GPU machine

``pack`` takes, from the cache ``examples/prepare_training_data.py`` made, an excerpt of the
middle of each training track (``--seconds``; packages taken in turn, so each is there, until
``--megabytes`` are used; ``--skip N`` starts at the N+1th, and ``--position`` takes the excerpts
from another part of the tracks, to pack another part) and of the middle of each validation
track, as the mono mix in Ogg Opus at about 80 kbit/s (48 kHz), with a ``manifest.json`` of their
splits.  Test tracks are never packed.  ``unpack`` decodes them back
into a cache of the same layout (int16 ``.npy`` at 44,100 Hz), which ``melrestore train
--dataset prepared --data`` reads.

The codec changes the log-Mel a little (mean absolute error about 0.05 of its standard
deviation at this rate, more in the top bands).  For the shipped model, training on briefly on
the real cache afterwards changed nothing measurable (README, "How the checkpoint was trained").
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

from melrestore.mel import resample
from prepare_training_data import RATE, save_decoded  # the sibling script: the cache's layout

OPUS_RATE = 48000  # the only full-band rate Opus takes
OPUS_LEVEL = 0.7  # libsndfile's compression level: about 80 kbit/s for a mono mix


def _excerpt(track: np.ndarray, seconds: float, position: float = 0.5) -> np.ndarray:
    """``seconds`` of a decoded track centred at ``position`` of its length (0.5: the middle;
    moved inwards where it would run over an end), as a float mono mix."""
    length = min(track.shape[-1], round(seconds * RATE))
    start = min(max(0, round(position * track.shape[-1]) - length // 2), track.shape[-1] - length)
    return track[:, start : start + length].astype(np.float32).mean(axis=0) / 32768.0


def _encode(job: tuple[Path, Path, float, float]) -> int:
    source, target, seconds, position = job
    mono = _excerpt(np.load(source, mmap_mode="r"), seconds, position)
    sf.write(target, resample(mono[None], RATE, OPUS_RATE)[0], OPUS_RATE, format="OGG", subtype="OPUS",
             compression_level=OPUS_LEVEL)
    return target.stat().st_size


def _in_turn(tracks: list[dict]) -> list[dict]:
    """Tracks ordered one package after another (first of each package, then second, ...)."""
    by_package: dict[str, list[dict]] = {}
    for track in tracks:
        by_package.setdefault(track["package"], []).append(track)
    queues = list(by_package.values())
    return [queue[i] for i in range(max(map(len, queues))) for queue in queues if i < len(queue)]


def pack(root: Path, out: Path, megabytes: float, seconds: float, validation_seconds: float, skip: int = 0,
         position: float = 0.5) -> int:
    tracks = json.loads((root / "manifest.json").read_text())["tracks"]
    out.mkdir(parents=True, exist_ok=True)
    # Validation first (all of it), then training tracks in turn until the budget is spent,
    # each excerpt's size estimated from the bit rate (with 5 % to spare).
    bytes_per_second = 80_000 / 8 * 1.05
    chosen, budget = [], megabytes * 1e6
    training = _in_turn([t for t in tracks if t["split"] == "train"])[skip:]
    for track in [t for t in tracks if t["split"] == "validation"] + training:
        length = min(track["seconds"], validation_seconds if track["split"] == "validation" else seconds)
        if budget < length * bytes_per_second:
            break
        budget -= length * bytes_per_second
        chosen.append((track, length))
    entries, jobs = [], []
    for track, length in chosen:
        name = f"{track['package']}--{track['track']}.opus"
        entries.append({**{k: track[k] for k in ("package", "track", "split")}, "packed": name, "seconds": round(length, 2)})
        # Validation excerpts stay the middle, whatever part of the training tracks is packed.
        jobs.append((root / track["decoded"], out / name, length, 0.5 if track["split"] == "validation" else position))
    with ProcessPoolExecutor() as pool:
        total = sum(pool.map(_encode, jobs))
    (out / "manifest.json").write_text(json.dumps({"sample_rate": RATE, "tracks": entries}, indent=1))
    for split in ("train", "validation"):
        some = [e for e in entries if e["split"] == split]
        print(f"{split}: {len(some)} excerpts, {sum(e['seconds'] for e in some) / 60:.1f} min")
    print(f"{total / 1e6:.1f} MB in {out}")
    return 0


def _decode(job: tuple[Path, Path]) -> None:
    source, target = job
    samples, rate = sf.read(source, dtype="float32", always_2d=True)
    save_decoded(resample(samples.T[:1], rate, RATE), target)


def unpack(packed: Path, root: Path) -> int:
    entries = json.loads((packed / "manifest.json").read_text())["tracks"]
    jobs, tracks = [], []
    for entry in entries:
        decoded = Path("decoded") / entry["package"] / f"{entry['track']}.npy"
        jobs.append((packed / entry["packed"], root / decoded))
        tracks.append({**entry, "decoded": decoded.as_posix(), "channels": 1})
    with ProcessPoolExecutor() as pool:
        list(pool.map(_decode, jobs))
    (root / "manifest.json").write_text(json.dumps({"sample_rate": RATE, "tracks": tracks}, indent=1))
    print(f"{len(tracks)} tracks decoded into {root}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    packing = commands.add_parser("pack", help="excerpts of a prepared cache, as Opus")
    packing.add_argument("root", type=Path, help="the cache of examples/prepare_training_data.py")
    packing.add_argument("out", type=Path)
    packing.add_argument("--megabytes", type=float, default=45.0, help="about how much to pack")
    packing.add_argument("--seconds", type=float, default=75.0, help="excerpt of each training track")
    packing.add_argument("--validation-seconds", type=float, default=45.0, help="excerpt of each validation track")
    packing.add_argument("--skip", type=int, default=0, help="leave out the first N training tracks (to pack another part)")
    packing.add_argument("--position", type=float, default=0.5,
                         help="where the training excerpts lie in their tracks (0.5: the middle; 0.2: a fifth of the way in)")
    unpacking = commands.add_parser("unpack", help="decode a packed folder into a prepared cache")
    unpacking.add_argument("packed", type=Path)
    unpacking.add_argument("root", type=Path)
    args = parser.parse_args()
    if args.command == "pack":
        return pack(args.root.expanduser(), args.out, args.megabytes, args.seconds, args.validation_seconds, args.skip,
                    args.position)
    return unpack(args.packed, args.root.expanduser())


if __name__ == "__main__":
    sys.exit(main())
