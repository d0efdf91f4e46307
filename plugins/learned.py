"""The learned inpainters: the U-Net and the FC baseline, run by ONNX Runtime or PyTorch.

Both back ends share the same pre/post-processing (``melrestore.networks``) and
read their analysis settings from the model file's metadata (``melrestore.states``),
so the engine analyses at the rate the model was trained on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from melrestore import hookimpl

# melrestore.networks and melrestore.states (torch), and onnxruntime, load only when a model is
# built or run: listing the plugins must not wait for them.
if TYPE_CHECKING:
    from melrestore.states import ModelMeta

CHECKPOINTS = Path(os.environ.get("MELRESTORE_CHECKPOINTS", Path(__file__).resolve().parents[1] / "checkpoints"))


# Network inputs per call (one per channel of each window).  8 runs as fast as 16 on the CPU, with
# the same output, and holds about 0.12 GB less of activations (measured on a 10-minute file).
BATCH_SIZE = 8


class LearnedInpainter:
    """Runs ``forward(inputs [B, planes, n_mels, T]) -> correction [B, 1, n_mels, T]`` in batches."""

    def __init__(self, forward, meta: ModelMeta, batch_size: int):
        self.forward = forward
        self.settings = meta.settings
        self.window_frames = meta.window_frames
        self.max_gap_seconds = meta.max_gap_seconds
        self.planes = meta.planes
        self.references = meta.references  # the engine retrieves this many stretches per window
        self.batch_size = batch_size

    def inpaint(self, log_mel, missing, references=None, quality=None):
        from melrestore.networks import finish, prepare

        log_mel, missing = np.asarray(log_mel, dtype=np.float32), np.asarray(missing, dtype=bool)
        inputs, base, _, std = prepare(log_mel, missing, self.planes, references, quality)
        outputs = [self.forward(inputs[i : i + self.batch_size]) for i in range(0, len(inputs), self.batch_size)]
        return finish(np.concatenate(outputs), base, std, missing)


def _model_file(path, default_name: str) -> Path:
    path = Path(path) if path else CHECKPOINTS / default_name
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} not found")
    return path


def torch_inpainter(default_name: str):
    def factory(model_file: str | None = None, batch_size: int = BATCH_SIZE, threads: int = 0):
        import torch

        from melrestore.states import load_checkpoint

        saved = load_checkpoint(_model_file(model_file, default_name))
        model = saved.model()
        if threads:
            torch.set_num_threads(threads)

        def forward(inputs):
            with torch.inference_mode():
                return model(torch.from_numpy(inputs)).numpy()

        return LearnedInpainter(forward, saved.meta, batch_size)

    return factory


def onnx_inpainter(default_name: str):
    def factory(model_file: str | None = None, batch_size: int = BATCH_SIZE, threads: int = 0):
        import onnxruntime as ort
        import torch

        from melrestore.states import read_onnx_meta

        path = _model_file(model_file, default_name)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No memory arena: it would keep the largest batch's activations (about 0.06 GB) for good.
        options.enable_cpu_mem_arena = False
        # As many threads as torch may use: batch workers lower that to share the cores.
        options.intra_op_num_threads = threads or torch.get_num_threads()
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

        def forward(inputs):
            return session.run(None, {"input": inputs})[0]

        return LearnedInpainter(forward, read_onnx_meta(path), batch_size)

    return factory


@hookimpl
def register_inpainters(register):
    register("unet-onnx", onnx_inpainter("unet-44k.onnx"))
    register("unet-torch", torch_inpainter("unet-44k.pt"))
    register("fc-onnx", onnx_inpainter("fc-44k.onnx"))
    register("fc-torch", torch_inpainter("fc-44k.pt"))
