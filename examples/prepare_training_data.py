"""Download, unpack and decode the Debian music packages the shipped models are trained on.

    python examples/prepare_training_data.py ~/melrestore-data

makes, below that folder:

* ``debs/`` and ``x/``: the downloaded packages and what ``dpkg -x`` unpacked;
* ``decoded/PACKAGE/TRACK.npy``: every track at 44,100 Hz as int16 ``[channels, samples]``,
  which training memory-maps (no decoding, no resampling, little memory per run);
* ``manifest.json``: every track's package, source file, length and split;
* ``test/``: links to the held-out source files (for ``melrestore evaluate``).

Splits: the whole of ``HELD_OUT_PACKAGE`` is the cross-genre test set (never trained or
validated on); of every other package, a fixed share of tracks (by a hash of the name) is
test and another validation; the rest trains.  Nothing here is committed to the repository.
Needs ``apt-get`` and ``dpkg`` (Debian or Ubuntu); runs again without redoing finished work.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np

from melrestore.audio import read
from melrestore.mel import resample

RATE = 44100
# Package -> (folder below the unpacked tree, file pattern).  Sound effects and the guitar stems
# of the Frets on Fire songs are left out (every song would otherwise be there several times).
PACKAGES = {
    "drascula-music": ("usr/share/scummvm/drascula/audio", "*.ogg"),
    "hyperrogue-music": ("usr/share/hyperrogue/music", "*.ogg"),
    "fretsonfire-songs-muldjord": ("usr/share/games/fretsonfire/data/songs/muldjord", "*/song.ogg"),
    "wesnoth-1.16-music": ("usr/share/games/wesnoth/1.16/data/core/music", "*.ogg"),
    "warzone2100-music": ("usr/share/games/warzone2100/music", "**/*.opus"),
    "singularity-music": ("usr/share/games/singularity/music", "**/*.ogg"),
    "planetblupi-music-ogg": ("usr/share/planetblupi/music", "*.ogg"),
    "nexuiz-music": ("nexuiz-music", "**/*.ogg"),  # unzipped from music.pk3 below
}
HELD_OUT_PACKAGE = "singularity-music"
TEST_PERCENT = 8  # of each trained package's tracks, held out for evaluation
VALIDATION_PERCENT = 8  # of each trained package's tracks, for choosing the checkpoint


def split_of(package: str, name: str) -> str:
    if package == HELD_OUT_PACKAGE:
        return "test"
    bucket = zlib.crc32(f"{package}/{name}".encode()) % 100
    return "test" if bucket < TEST_PERCENT else "validation" if bucket < TEST_PERCENT + VALIDATION_PERCENT else "train"


def save_decoded(samples: np.ndarray, target: Path) -> None:
    """Float samples ``[channels, samples]`` at ``RATE`` as the cache's int16 ``.npy``, written
    under another name first, so a killed run never leaves a half-written track behind."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial.npy")
    np.save(partial, np.round(np.clip(samples, -1, 1) * 32767).astype(np.int16))
    partial.rename(target)


def unpack(root: Path) -> Path:
    debs, tree = root / "debs", root / "x"
    debs.mkdir(parents=True, exist_ok=True)
    missing = [p for p in PACKAGES if not list(debs.glob(f"{p}_*.deb"))]
    if missing:
        subprocess.run(["apt-get", "download", *missing], cwd=debs, check=True)
    if not tree.is_dir():
        for deb in sorted(debs.glob("*.deb")):
            subprocess.run(["dpkg", "-x", str(deb), str(tree)], check=True)
    pk3 = tree / "usr/share/games/nexuiz/data/music.pk3"
    if pk3.is_file() and not (tree / "nexuiz-music").is_dir():
        with zipfile.ZipFile(pk3) as archive:
            archive.extractall(tree / "nexuiz-music")
    return tree


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="cache folder (outside the repository)")
    args = parser.parse_args()
    root = args.root.expanduser().resolve()
    tree = unpack(root)
    manifest = []
    for package, (folder, pattern) in PACKAGES.items():
        for source in sorted((tree / folder).glob(pattern)):
            name = source.relative_to(tree / folder).with_suffix("").as_posix().replace("/", "-")
            target = root / "decoded" / package / f"{name}.npy"
            if not target.is_file():
                audio = read(source)
                save_decoded(resample(audio.as_float(), audio.sample_rate, RATE), target)
            shape = np.load(target, mmap_mode="r").shape
            entry = {"package": package, "track": name, "source": str(source), "decoded": str(target.relative_to(root)),
                     "channels": shape[0], "seconds": round(shape[1] / RATE, 2), "split": split_of(package, name)}
            manifest.append(entry)
            print(f"{entry['split']:10s} {shape[1] / RATE / 60:5.1f} min  {package}/{name}", flush=True)
            if entry["split"] == "test":
                link = root / "test" / f"{package}-{name}{source.suffix}"
                link.parent.mkdir(exist_ok=True)
                if not link.is_symlink():
                    link.symlink_to(source)
    (root / "manifest.json").write_text(json.dumps({"sample_rate": RATE, "tracks": manifest}, indent=1))
    for split in ("train", "validation", "test"):
        tracks = [t for t in manifest if t["split"] == split]
        print(f"{split}: {len(tracks)} tracks, {sum(t['seconds'] for t in tracks) / 3600:.2f} h")
    return 0


if __name__ == "__main__":
    sys.exit(main())
