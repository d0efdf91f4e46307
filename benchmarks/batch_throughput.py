"""Batch throughput as a multiple of real time, split by stage.

The stage split comes from one process; the next line is `melrestore batch`'s runner in the same
process (one worker process per core, their start-up included), and the last the command itself in
a new process, as a user types it (the interpreter's start and its imports, torch's above all,
included).  CPU seconds (all threads and worker processes) are printed too: on a machine shared
with other jobs they compare runs better than the wall clock does.

Builds a folder of real music (the shipped example clips, tiled to a minute each) with a
dropout every ~4 seconds (lengths drawn from 5 ms to 1 s; ``--gap-every`` for sparser damage,
where the analyses of the whole recording weigh more), repairs it with the default pipeline,
and prints the time per stage.

    .venv/bin/python benchmarks/batch_throughput.py [--inpainter unet-onnx] [--files 4] [--gap-every 4]
"""

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from melrestore.batch import repair_file, run_batch
from melrestore.inputs import find_audio_files
from melrestore.pipeline import PipelineOptions, build_engine

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "clean"


def cpu_seconds() -> float:
    """CPU time of this process and of its finished child processes, user and system."""
    return sum(r.ru_utime + r.ru_stime for r in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))


def make_recordings(folder: Path, files: int, seconds: float, seed: int = 0, gap_every: float = 4.0) -> float:
    rng = np.random.default_rng(seed)
    clips = [sf.read(p, dtype="float32", always_2d=True) for p in sorted(EXAMPLES.glob("*.flac"))]
    total = 0.0
    for i in range(files):
        audio, rate = clips[i % len(clips)]
        n = int(seconds * rate)
        audio = np.tile(audio, (int(np.ceil(n / len(audio))), 1))[:n].copy()
        for centre in np.arange(gap_every / 2, seconds - gap_every / 2, gap_every):
            length = int(rate * float(np.exp(rng.uniform(np.log(0.005), np.log(1.0)))))
            start = int((centre + rng.uniform(-1, 1)) * rate)
            audio[start : start + length] = 0.0
        sf.write(folder / f"take{i}.wav", audio, rate, subtype="PCM_16")
        total += seconds
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inpainter", default="unet-onnx")
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--gap-every", type=float, default=4.0, help="seconds between dropouts (about)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in", Path(tmp) / "out"
        src.mkdir()
        audio_s = make_recordings(src, args.files, args.seconds, gap_every=args.gap_every)
        engine = build_engine(PipelineOptions(inpainter=args.inpainter))
        started, cpu_started = time.perf_counter(), cpu_seconds()
        gaps = 0
        for path in find_audio_files(src):
            report = repair_file(engine, path, out / path.name)
            gaps += report.count("repaired")
        wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
        options = PipelineOptions(inpainter=args.inpainter)
        cpu_started = cpu_seconds()
        report = run_batch(src, Path(tmp) / "out-workers", options, workers=0)["summary"]
        workers_cpu = cpu_seconds() - cpu_started
        # The command as a user types it: a new interpreter, its imports (torch) included.
        cpu_started, started = cpu_seconds(), time.perf_counter()
        subprocess.run([sys.executable, "-m", "melrestore", "batch", str(src), "-o", str(Path(tmp) / "out-command"), "-q",
                        "--inpainter", args.inpainter], check=True)
        command_wall, command_cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
    print(f"{args.files} files, {audio_s:.0f} s of audio, {gaps} gaps repaired, inpainter {args.inpainter}")
    print(f"{'stage':<12}{'seconds':>10}{'share':>8}")
    for stage, seconds in sorted(engine.timings.items(), key=lambda kv: -kv[1]):
        print(f"{stage:<12}{seconds:>10.2f}{100 * seconds / wall:>7.0f}%")
    print(f"{'total':<12}{wall:>10.2f}")
    print(f"throughput: {audio_s / wall:.1f}x real time (one process; {cpu:.1f} CPU seconds)")
    print(f"throughput: {report['realtime_factor']}x real time (`batch` with one worker per core, start-up included;"
          f" {workers_cpu:.1f} CPU seconds)")
    print(f"throughput: {audio_s / command_wall:.1f}x real time (`melrestore batch` in a new process, its imports included;"
          f" {command_wall:.1f} s, {command_cpu:.1f} CPU seconds)")


if __name__ == "__main__":
    main()
