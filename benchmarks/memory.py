"""Peak memory of repairing one file, against the file's length.

Each length runs `melrestore repair` in a fresh process (the shipped example clips tiled to
the length, 16-bit stereo WAV at 44.1 kHz, a dropout every ~4 s as in batch_throughput.py)
and reads its peak resident memory.  The files are generated into a temporary folder and removed.
The pipeline reads files in pieces, so the peak should barely grow with the length (the search
features of the whole recording, 1/16 of the decoded audio, are what grows).

    .venv/bin/python benchmarks/memory.py [--minutes 10 30 120] [--inpainter unet-onnx]
"""

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from batch_throughput import make_recordings  # noqa: E402


def peak_of_repair(source: Path, target: Path, inpainter: str) -> tuple[float, float]:
    """Peak RSS (GB) and wall time (s) of one `melrestore repair` run in its own process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from melrestore.cli import cli; cli()", "repair", str(source), "-o", str(target),
                    "--inpainter", inpainter], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # kB; the largest child so far
    if peak <= before:
        raise RuntimeError("run the lengths from short to long: ru_maxrss keeps the largest child")
    return peak / 1e6, wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[10, 30, 120])
    parser.add_argument("--inpainter", default="unet-onnx")
    args = parser.parse_args()
    print(f"{'minutes':>8} {'peak GB':>8} {'GB/min':>7} {'wall s':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in sorted(args.minutes):
            folder = Path(tmp) / f"{minutes:g}min"
            folder.mkdir()
            make_recordings(folder, 1, 60 * minutes)
            peak, wall = peak_of_repair(folder / "take0.wav", folder / "repaired.wav", args.inpainter)
            print(f"{minutes:8g} {peak:8.2f} {peak / minutes:7.3f} {wall:7.1f}")


if __name__ == "__main__":
    main()
