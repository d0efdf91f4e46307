"""Log-Mel L1 of checkpoints against the interpolation, per gap length, on held-out windows.

Made the per-gap-length validation table in the README:

    python examples/validate_by_gap_length.py ~/music/train checkpoints/unet-44k.pt runs/unet-ft/best.pt

Each gap is centred in the window the engine would pick for it
(``melrestore.mel.window_for_gap``), cut the way the engine cuts it (samples
zeroed, every overlapping frame missing), from the validation split of the
folder data set (``--all-files``: every file of the folder, for music held out
of training altogether).  Every model fills gaps centred on the same samples,
so the differences between models are paired.  Errors are in natural-log Mel
units on the missing frames, averaged per window; the last columns are the first
checkpoint's error minus each other method's, mean ± standard error over the
same windows (negative: the first checkpoint is better).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from melrestore import networks
from melrestore.mel import MIN_CONTEXT_FRAMES, MelFrontend, MelSettings, window_for_gap
from melrestore.plugins.datasets import AudioFolder
from melrestore.training import load_tracks


def windows_with_gap(places, frontend: MelFrontend, frames: int, gap: int):
    """-> (clean log-Mel, damaged log-Mel, missing frames) for a gap of ``gap`` samples centred
    on each place (track, centre sample)."""
    length = frontend.settings.samples_for(frames)
    clean = np.stack([track[centre - length // 2 :][:length] for track, centre in places])
    missing = np.zeros(length, dtype=bool)
    missing[(length - gap) // 2 :][:gap] = True
    return frontend.log_mel(clean), *frontend.analyse_with_gap(clean, missing)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="folder of music (its validation split is used)")
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--gaps-ms", default="50,100,200,400,1000,2000,3000")
    parser.add_argument("--windows", type=int, default=48, help="windows per gap length")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--all-files", action="store_true", help="use every file, not the validation split")
    args = parser.parse_args()

    models = {}
    for path in args.checkpoints:
        state = networks.load_checkpoint(path)
        models[path] = (networks.model_from_checkpoint(state), state)
    settings = MelSettings.from_dict(next(iter(models.values()))[1]["mel_settings"])
    frontend = MelFrontend(settings)
    folder = AudioFolder(args.data)
    files = [*folder.files("train"), *folder.files("validation")] if args.all_files else folder.files("validation")
    tracks = load_tracks(files, settings, [])
    rng = np.random.default_rng(args.seed)
    longest = settings.samples_for(512)

    names = ["interpolation", *models]
    print("| gap | " + " | ".join(names) + " | " + " | ".join(f"{args.checkpoints[0]} minus {n}" for n in names if n != args.checkpoints[0]) + " |")
    print("| --- " * (2 * len(names)) + "|")
    for ms in (int(g) for g in args.gaps_ms.split(",")):
        gap = round(ms * settings.sample_rate / 1000)
        places = []
        for _ in range(args.windows):
            track = tracks[rng.integers(len(tracks))]
            places.append((track, int(rng.integers(longest // 2, len(track) - longest // 2))))
        errors = {}  # method -> error per window
        for path, (model, state) in models.items():
            frames = window_for_gap(settings.missing_frames_for(gap), state["window_frames"], MIN_CONTEXT_FRAMES)
            clean, damaged, missing = windows_with_gap(places, frontend, frames, gap)
            inputs, base, _, std = networks.prepare(damaged, missing, networks.input_planes(state["model_config"]))
            with torch.inference_mode():
                filled = networks.finish(model(torch.from_numpy(inputs)).numpy(), base, std, missing)
            chosen = np.repeat(missing[:, None, :], settings.n_mels, axis=1)
            per_window = lambda fill: np.where(chosen, np.abs(fill - clean), 0).sum(axis=(1, 2)) / chosen.sum(axis=(1, 2))  # noqa: E731
            errors.setdefault("interpolation", per_window(base))  # the same whatever the window length
            errors[path] = per_window(filled)
        first = errors[args.checkpoints[0]]
        differences = [first - errors[n] for n in names if n != args.checkpoints[0]]
        print(f"| {ms} ms | " + " | ".join(f"{errors[n].mean():.3f}" for n in names) + " | "
              + " | ".join(f"{d.mean():+.3f} ± {d.std(ddof=1) / np.sqrt(len(d)):.3f}" for d in differences) + " |")


if __name__ == "__main__":
    main()
