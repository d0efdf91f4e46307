"""Peak memory of repairing one file, against the file's length.

Each length runs `melrestore repair` in a fresh process (the shipped example clips tiled to
the length, 16-bit stereo WAV at 44.1 kHz, a dropout every ~4 s as in batch_throughput.py)
and reads its peak resident memory (the child's own high-water mark, from Linux's /proc).
The files are generated into a temporary folder and removed.  The pipeline reads files in
pieces, so the peak should barely grow with the length (what grows: the search features of the
stretches within 5 minutes of a gap, about 1/16 of the decoded audio so analysed, and the fills
until the file is written).

    .venv/bin/python benchmarks/memory.py [--minutes 10 30 120] [--inpainter unet-onnx] [--gap-every 4]
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from batch_throughput import make_recordings  # noqa: E402


# Run in the child: its own peak resident memory (VmHWM, of its own address space) into a file at exit.
# Not getrusage: the child's ru_maxrss starts from the parent's peak when it was forked, and this
# benchmark's parent has just built a long recording in memory.
CHILD = """
import atexit, sys
from pathlib import Path
def peak(path=Path(sys.argv[1])):
    kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    path.write_text(str(kb))
atexit.register(peak)
sys.argv = ["melrestore", *sys.argv[2:]]
from melrestore.cli import cli
cli()
"""


def peak_of_repair(source: Path, target: Path, inpainter: str) -> tuple[float, float]:
    """Peak RSS (GB) and wall time (s) of one `melrestore repair` run in its own process."""
    report = target.with_suffix(".peak")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", CHILD, str(report), "repair", str(source), "-o", str(target),
                    "--inpainter", inpainter], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    return int(report.read_text()) / 1e6, wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[10, 30, 120])
    parser.add_argument("--inpainter", default="unet-onnx")
    parser.add_argument("--gap-every", type=float, default=4.0,
                        help="seconds between dropouts (about); sparse damage analyses less of a long file")
    args = parser.parse_args()
    print(f"{'minutes':>8} {'peak GB':>8} {'GB/min':>7} {'wall s':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            folder = Path(tmp) / f"{minutes:g}min"
            folder.mkdir()
            make_recordings(folder, 1, 60 * minutes, gap_every=args.gap_every)
            peak, wall = peak_of_repair(folder / "take0.wav", folder / "repaired.wav", args.inpainter)
            print(f"{minutes:8g} {peak:8.2f} {peak / minutes:7.3f} {wall:7.1f}")


if __name__ == "__main__":
    main()
