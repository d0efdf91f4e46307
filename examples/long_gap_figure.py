"""The README's before/after figure of a long gap, from a `melrestore evaluate` run.

    python examples/long_gap_figure.py REPORT_DIR SOURCE_FILE --excerpt 60 --gap-ms 2000 -o long-gap.png \
        [--method interpolation --method "unet-onnx=U-Net" ...]

Shows the original, the damaged input and each method's fill of the first gap of that length in
that file, as spectrograms over the gap plus half a second each side; ``--method NAME=LABEL``
titles a method's panel LABEL.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from melrestore.audio import read
from melrestore.evaluate import _excerpt
from melrestore.figures import gap_spectrograms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("source", type=Path, help="the clean recording the run punched gaps into")
    parser.add_argument("--gap-ms", type=int, default=2000)
    parser.add_argument("--excerpt", type=float, help="the run's --excerpt")
    parser.add_argument("--method", action="append", default=None, metavar="NAME[=LABEL]")
    parser.add_argument("-o", "--out", type=Path, required=True)
    args = parser.parse_args()
    result = json.loads((args.report / "metrics.json").read_text())
    # The source's name in the run (its "files" map; runs before it had one name the .wav alone).
    name = next((n for n, path in result.get("files", {}).items() if Path(path).name == args.source.name), args.source.with_suffix(".wav").name)
    gap = next(r for r in result["gaps"] if r["file"] == name and r["gap_ms"] == args.gap_ms)
    panels = {"original": _excerpt(read(args.source), args.excerpt), "damaged": read(args.report / "damaged" / name).as_float()}
    for method in args.method or ["interpolation", "unet-onnx", "batch-default"]:
        method, _, label = method.partition("=")
        panels[label or method] = read(args.report / "repaired" / method / name).as_float()
    gap_spectrograms(panels, gap["rate"], gap["start"], gap["end"], args.out, f"{name}: {args.gap_ms} ms gap")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
