"""The README's ablation tables: checkpoints against the interpolation on the same held-out windows.

    python examples/validation_ablation.py ~/melrestore-data \\
        --model shipped=checkpoints/unet-44k.pt --model "no references=runs/x/best.pt" \\
        [--withhold shipped] [--split test] [--package singularity-music] [--windows 64 --seed 11]

Windows come from one split of the prepared cache (examples/prepare_training_data.py), cut and
retrieved exactly as in training; the numbers are the training objective's two terms (normalised
log-Mel L1 and the texture term on the missing frames, lower is better), as the mean over windows
and as the paired difference against the interpolation on the same windows (mean ± standard error).
``--withhold NAME`` adds a row for that model run without its references (the "no match" planes).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from melrestore.states import load_checkpoint
from melrestore.plugins.datasets import PreparedCache
from melrestore.training import WindowSampler, _to_tensors, load_tracks, masked_l1, texture_loss


def per_window(loss, prediction, target, inputs, mask) -> np.ndarray:
    """One value of ``loss`` per window (both terms take whole batches)."""
    values = []
    for i in range(len(prediction)):
        one = slice(i, i + 1)
        if loss is texture_loss:
            values.append(texture_loss(prediction[one], target[one], inputs[one, :1], mask[one]).item())
        else:
            values.append(masked_l1(prediction[one], target[one], mask[one]).item())
    return np.array(values)


def mean_and_paired(values: np.ndarray, baseline: np.ndarray) -> str:
    difference = values - baseline
    return f"{values.mean():.3f} ({difference.mean():+.3f} ± {difference.std(ddof=1) / np.sqrt(len(values)):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cache")
    parser.add_argument("--model", action="append", required=True, metavar="NAME=CHECKPOINT")
    parser.add_argument("--withhold", action="append", default=[], metavar="NAME")
    parser.add_argument("--split", default="validation", choices=("validation", "test"))
    parser.add_argument("--package", help="only the tracks of this package (e.g. the held-out one)")
    parser.add_argument("--windows", type=int, default=64, help="windows per window length")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--other-gaps-per-minute", type=float, default=0.0,
                        help="windows and references also hold other gaps, at this rate (dense damage)")
    args = parser.parse_args()

    checkpoints = {name: load_checkpoint(path) for name, path in (m.split("=", 1) for m in args.model)}
    first = next(iter(checkpoints.values())).meta
    settings = first.settings
    cache = PreparedCache(args.cache)
    files = [f for f in cache.files(args.split) if args.package is None or f.parent.name == args.package]
    tracks = load_tracks(files, settings, [])
    references = max(c.meta.references for c in checkpoints.values())
    sampler = WindowSampler(tracks, settings, first.window_frames, 16, first.max_gap_seconds,
                            seed=args.seed, references=references, other_gaps_per_minute=args.other_gaps_per_minute)
    runs = {"interpolation": (None, 3, False)}  # name -> (network or None, planes, use references)
    for name, checkpoint in checkpoints.items():
        model, planes = checkpoint.model(), checkpoint.meta.planes
        runs[name] = (model, planes, checkpoint.meta.references > 0)
        if name in args.withhold:
            runs[f"{name}, references withheld"] = (model, planes, False)

    print(f"{len(tracks)} {args.split} tracks{' of ' + args.package if args.package else ''}, "
          f"{args.windows} windows per length, seed {args.seed}, {args.other_gaps_per_minute:g} other gaps a minute")
    terms = {"L1": masked_l1, "texture": texture_loss}
    rows = {term: {name: [] for name in runs} for term in terms}
    for window in sampler.windows:
        clean, damaged, missing, found, quality = sampler.batch(window, args.windows)
        baselines = {}
        for name, (model, planes, with_references) in runs.items():
            given = (found, quality) if with_references else (None, None)
            inputs, target, mask = _to_tensors(clean, damaged, missing, *given, planes)
            with torch.no_grad():
                prediction = model(inputs) if model is not None else torch.zeros_like(target)
            for term, loss in terms.items():
                values = per_window(loss, prediction, target, inputs, mask)
                baselines.setdefault(term, values)
                rows[term][name].append(mean_and_paired(values, baselines[term]))
    for term, table in rows.items():
        print(f"\n{term}: mean (paired difference against the interpolation ± standard error)\n")
        print(f"| {term} | " + " | ".join(f"{w} frames" for w in sampler.windows) + " |")
        print("| --- " * (len(sampler.windows) + 1) + "|")
        for name, cells in table.items():
            print(f"| {name} | " + " | ".join(cells) + " |")

if __name__ == "__main__":
    main()
