"""The README's validation table: interpolation, an earlier checkpoint and the shipped retrieval
U-Net (with and without its references) on the same held-out validation windows.

    python examples/validation_ablation.py ~/melrestore-data OLD_CHECKPOINT.pt [--windows 64 --seed 11]

Windows come from the validation split of the prepared cache (examples/prepare_training_data.py),
cut and retrieved exactly as in training; the numbers are the training objective's two terms.
"""

from __future__ import annotations

import argparse

import torch

from melrestore import states
from melrestore.plugins.datasets import PreparedCache
from melrestore.training import WindowSampler, _to_tensors, load_tracks, masked_l1, texture_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cache")
    parser.add_argument("old", help="a checkpoint without references, e.g. an earlier shipped U-Net")
    parser.add_argument("--new", default="checkpoints/unet-44k.pt")
    parser.add_argument("--windows", type=int, default=64)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    new = states.load_checkpoint(args.new)
    settings = new.meta.settings
    tracks = load_tracks(PreparedCache(args.cache).files("validation"), settings, [])
    sampler = WindowSampler(tracks, settings, new.meta.window_frames, 16, new.meta.max_gap_seconds,
                            seed=args.seed, references=new.meta.references)
    old = states.load_checkpoint(args.old)
    models = {  # name -> (network or None for the interpolation, planes, use references)
        "interpolation": (None, 3, False),
        "older checkpoint": (old.model(), old.meta.planes, False),
        "retrieval U-Net": (new.model(), new.meta.planes, True),
        "retrieval U-Net, references withheld": (new.model(), new.meta.planes, False),
    }
    rows = {name: [] for name in models}
    for window in sampler.windows:
        clean, damaged, missing, references, quality = sampler.batch(window, args.windows)
        for name, (model, planes, with_references) in models.items():
            given = (references, quality) if with_references else (None, None)
            inputs, target, mask = _to_tensors(clean, damaged, missing, *given, planes)
            with torch.no_grad():
                prediction = model(inputs) if model is not None else torch.zeros_like(target)
            rows[name].append(f"{masked_l1(prediction, target, mask).item():.3f} / {texture_loss(prediction, target, inputs[:, :1], mask).item():.3f}")
    print("| model | " + " | ".join(f"{w} frames" for w in sampler.windows) + " |")
    print("| --- " * (len(sampler.windows) + 1) + "|")
    for name, cells in rows.items():
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
