"""Log-Mel L1 of checkpoints against the interpolation, per gap length, on held-out windows.

Made the per-gap-length validation table in the README:

    python examples/validate_by_gap_length.py ~/music/train checkpoints/unet-44k.pt runs/unet-ft/best.pt

Each gap is centred in the smallest window of the model that holds it, cut the
way the engine cuts it (samples zeroed, every overlapping frame missing), from
the validation split of the folder data set; the same places are used for every
model.  Errors are in natural-log Mel units on the missing frames.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch

from melrestore import networks
from melrestore.mel import MelFrontend, MelSettings
from melrestore.plugins.datasets import AudioFolder
from melrestore.training import load_tracks


def windows_with_gap(places, frontend: MelFrontend, frames: int, gap: int):
    """-> (clean log-Mel, damaged log-Mel, missing frames) for a centred gap of ``gap`` samples."""
    length = frontend.settings.samples_for(frames)
    clean = np.stack([track[start : start + length] for track, start in places])
    missing = np.zeros(length, dtype=bool)
    missing[(length - gap) // 2 :][:gap] = True
    return frontend.log_mel(clean), *frontend.analyse_with_gap(clean, missing)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="folder of music (its validation split is used)")
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--gaps-ms", default="50,100,200,400,1000,2000")
    parser.add_argument("--windows", type=int, default=48, help="windows per gap length")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    models = {}
    for path in args.checkpoints:
        state = networks.load_checkpoint(path)
        models[path] = (networks.model_from_checkpoint(state), state)
    settings = MelSettings.from_dict(next(iter(models.values()))[1]["mel_settings"])
    frontend = MelFrontend(settings)
    tracks = load_tracks(AudioFolder(args.data).files("validation"), settings, [])
    rng = np.random.default_rng(args.seed)
    longest = settings.samples_for(512)

    for ms in (int(g) for g in args.gaps_ms.split(",")):
        gap = round(ms * settings.sample_rate / 1000)
        needed = math.ceil((gap + settings.n_fft) / settings.hop_length) + 1 + 32  # 16 known frames each side
        places = []
        for _ in range(args.windows):
            track = tracks[rng.integers(len(tracks))]
            places.append((track, int(rng.integers(0, len(track) - longest))))
        line = [f"{ms:>5} ms"]
        for path, (model, state) in models.items():
            frames = min(w for w in state["window_frames"] if w >= needed)
            clean, damaged, missing = windows_with_gap(places, frontend, frames, gap)
            inputs, base, _, std = networks.prepare(damaged, missing, networks.input_planes(state["model_config"]))
            with torch.inference_mode():
                filled = networks.finish(model(torch.from_numpy(inputs)).numpy(), base, std, missing)
            chosen = np.repeat(missing[:, None, :], settings.n_mels, axis=1)
            line.append(f"{path}: {np.abs(filled - clean)[chosen].mean():.3f} (interpolation {np.abs(base - clean)[chosen].mean():.3f})")
        print("  ".join(line))


if __name__ == "__main__":
    main()
