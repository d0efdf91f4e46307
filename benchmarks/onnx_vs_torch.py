"""ONNX Runtime against PyTorch eager on the same model and inputs.

    .venv/bin/python benchmarks/onnx_vs_torch.py [--model unet-44k] [--repeats 20]

Prints the median latency of each at batch 1 and batch 16 for each window length, and the ratio.
"""

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from melrestore.states import load_checkpoint

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"


def median_ms(run, repeats: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="unet-44k")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    saved = load_checkpoint(CHECKPOINTS / f"{args.model}.pt")
    model = saved.model()
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(CHECKPOINTS / f"{args.model}.onnx"), options, providers=["CPUExecutionProvider"])
    n_mels, planes = saved.meta.model_config["n_mels"], saved.meta.planes
    print(f"{args.model}, {args.threads} threads, median of {args.repeats} runs")
    print(f"{'batch':>5} {'frames':>6} {'torch ms':>10} {'onnx ms':>10} {'speed-up':>9}")
    for batch in (1, 16):
        for frames in saved.meta.window_frames:
            inputs = np.random.default_rng(0).standard_normal((batch, planes, n_mels, frames)).astype(np.float32)
            tensor = torch.from_numpy(inputs)
            with torch.inference_mode():
                eager = median_ms(lambda t=tensor: model(t), args.repeats)
            onnx = median_ms(lambda x=inputs: session.run(None, {"input": x}), args.repeats)
            print(f"{batch:>5} {frames:>6} {eager:>10.2f} {onnx:>10.2f} {eager / onnx:>8.2f}x")


if __name__ == "__main__":
    main()
