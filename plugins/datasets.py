"""Built-in training data sets: a folder of audio, CAL500 as users have it, a prepared cache.

The prepared cache is the decoded one of ``examples/prepare_training_data.py``.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

from melrestore import hookimpl
from melrestore.inputs import UNREAD_FOLDER, find_audio_files


def split_of(key: str, validation_percent: int) -> str:
    """Deterministic split by name: the same file always lands on the same side."""
    return "validation" if zlib.crc32(key.encode("utf-8")) % 100 < validation_percent else "train"


def _unread_folders(unlisted: dict[Path, str]) -> list[str]:
    return [f"{UNREAD_FOLDER} {folder}: {reason} (no file in it is used)" for folder, reason in sorted(unlisted.items())]


class AudioFolder:
    """Every audio file below ``root`` (recursive), split by relative path."""

    def __init__(self, root, validation_percent: int = 15):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root} is not a folder")
        self.validation_percent = validation_percent
        unlisted: dict[Path, str] = {}
        self._files = find_audio_files(self.root, unlisted)
        self.problems = _unread_folders(unlisted)

    def files(self, split: str) -> list[Path]:
        return [p for p in self._files if split_of(p.relative_to(self.root).as_posix(), self.validation_percent) == split]


class CAL500:
    """CAL500 as distributed: ``CAL500_noAudioFeatures/songNames.txt`` (one ``artist-title`` id a
    line) and the audio as ``<id>.mp3`` anywhere below ``root`` (e.g. ``CAL500_32kps/`` or ``mp3/``).

    Audio is joined to ids by the full file stem: ids contain dots and hyphens.
    """

    def __init__(self, root, validation_percent: int = 15):
        self.root = Path(root)
        names = sorted(self.root.rglob("songNames.txt"))
        if not names:
            raise FileNotFoundError(f"no songNames.txt below {self.root}: is this a CAL500 copy?")
        self.ids = [line.strip() for line in names[0].read_text(encoding="utf-8").splitlines() if line.strip()]
        self.validation_percent = validation_percent
        audio, unlisted = {}, {}
        for path in find_audio_files(self.root, unlisted):
            audio.setdefault(path.stem, path)
        known = set(self.ids)
        self.audio = {song: audio[song] for song in self.ids if song in audio}
        self.problems = _unread_folders(unlisted) + [f"no audio for id {song!r}" for song in self.ids if song not in audio]
        self.problems += [f"audio without an id: {path}" for stem, path in sorted(audio.items()) if stem not in known]

    def files(self, split: str) -> list[Path]:
        return [path for song, path in self.audio.items() if split_of(song, self.validation_percent) == split]


class PreparedCache:
    """A cache made by ``examples/prepare_training_data.py``: ``manifest.json`` lists each decoded
    track (int16 ``.npy`` at the analysis rate) with its split (train, validation or test, fixed
    when the cache was made, so it takes no ``validation_percent``; test tracks are never handed to
    training)."""

    def __init__(self, root):
        self.root = Path(root)
        manifest = self.root / "manifest.json"
        if not manifest.is_file():
            raise FileNotFoundError(f"no manifest.json in {self.root}: run examples/prepare_training_data.py first")
        try:
            self.tracks = json.loads(manifest.read_text(encoding="utf-8"))["tracks"]
            if not all(isinstance(t["decoded"], str) and t["split"] in ("train", "validation", "test") for t in self.tracks):
                raise ValueError("a track without a decoded file or a split")
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{manifest} is not a manifest of examples/prepare_training_data.py "
                             f"({{\"tracks\": [{{\"decoded\": ..., \"split\": ...}}, ...]}}): "
                             f"{f'no {exc}' if isinstance(exc, KeyError) else exc}") from None
        self.problems = [f"decoded file missing: {t['decoded']}" for t in self.tracks if not (self.root / t["decoded"]).is_file()]

    def files(self, split: str) -> list[Path]:
        return [self.root / t["decoded"] for t in self.tracks if t["split"] == split and (self.root / t["decoded"]).is_file()]


@hookimpl
def register_datasets(register):
    register("folder", AudioFolder)
    register("cal500", CAL500)
    register("prepared", PreparedCache)
