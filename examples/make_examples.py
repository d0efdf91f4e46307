"""How the example recordings were made (needs Debian's fretsonfire-songs-muldjord, see README).

Cuts short clips of "Mutilated Mime" by Muldjord (CC-BY-SA 3.0), keeps the clean clips in
examples/clean/ and punches dropouts (digital silence) into copies in examples/recordings/.

    python examples/make_examples.py /path/to/mutilated_mime/song.ogg
"""

import argparse
import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio

HERE = Path(__file__).parent
# name, start (s), length (s), rate, channels, format, subtype, gaps [(start s, length ms)]
CLIPS = [
    ("mutilated-mime-a.wav", 40.0, 6.0, 44100, 2, "WAV", "PCM_16", [(1.5, 25), (3.0, 250), (4.5, 1000)]),
    ("more/mutilated-mime-b.flac", 95.0, 6.0, 48000, 2, "FLAC", "PCM_24", [(1.0, 6), (2.5, 400), (4.5, 100)]),
    ("mutilated-mime-c.wav", 130.0, 4.0, 22050, 1, "WAV", "PCM_16", []),
]


def main(song: str) -> None:
    music, rate = sf.read(song, dtype="float32", always_2d=True)
    manifest = {}
    for name, start, length, target_rate, channels, fmt, subtype, gaps in CLIPS:
        clip = music[int(start * rate) : int((start + length) * rate)].T
        clip = torchaudio.functional.resample(torch.from_numpy(np.ascontiguousarray(clip)), rate, target_rate).numpy()
        clip = clip[:channels] if channels == 2 else clip.mean(axis=0, keepdims=True)
        clean = HERE / "clean" / Path(name).with_suffix(".flac").name
        clean.parent.mkdir(exist_ok=True)
        sf.write(clean, clip.T, target_rate, subtype=subtype)
        damaged = sf.read(clean, dtype="float32", always_2d=True)[0].T.copy()
        spans = []
        for gap_start, gap_ms in gaps:
            a = int(gap_start * target_rate)
            b = a + int(gap_ms * target_rate / 1000)
            damaged[:, a:b] = 0.0
            spans.append([a, b])
        out = HERE / "recordings" / name
        out.parent.mkdir(parents=True, exist_ok=True)
        sf.write(out, damaged.T, target_rate, format=fmt, subtype=subtype)
        manifest[name] = {"clean": f"clean/{clean.name}", "gaps": spans}
    (HERE / "gaps.json").write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("song", help="Muldjord's mutilated_mime song.ogg")
    main(parser.parse_args().song)
