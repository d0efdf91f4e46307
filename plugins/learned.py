"""The learned inpainters: the U-Net and the FC baseline, run by ONNX Runtime or PyTorch.

Both back ends share the same pre/post-processing (``melrestore.networks``) and
read their analysis settings from the model file, so the engine analyses at
the rate the model was trained on.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from melrestore import hookimpl
from melrestore.analysis import MelSettings

# melrestore.networks, torch and onnxruntime load only when a model is built: listing the plugins
# must not wait for them.

CHECKPOINTS = Path(os.environ.get("MELRESTORE_CHECKPOINTS", Path(__file__).resolve().parents[1] / "checkpoints"))


class LearnedInpainter:
    """Runs ``forward(inputs [B, planes, n_mels, T]) -> correction [B, 1, n_mels, T]`` in batches."""

    def __init__(self, forward, meta: dict, batch_size: int):
        from melrestore.networks import input_planes, reference_count

        self.forward = forward
        self.settings = MelSettings.from_dict(meta["mel_settings"])
        self.window_frames = tuple(meta["window_frames"])
        self.max_gap_seconds = meta["max_gap_seconds"]
        self.planes = input_planes(meta["model_config"])
        self.references = reference_count(meta)  # the engine retrieves this many stretches per window
        self.meta = meta
        self.batch_size = batch_size

    def inpaint(self, log_mel, missing, references=None, quality=None):
        from melrestore.networks import finish, prepare

        log_mel, missing = np.asarray(log_mel, dtype=np.float32), np.asarray(missing, dtype=bool)
        inputs, base, _, std = prepare(log_mel, missing, self.planes, references, quality)
        outputs = [self.forward(inputs[i : i + self.batch_size]) for i in range(0, len(inputs), self.batch_size)]
        return finish(np.concatenate(outputs), base, std, missing)


def _path(path, default_name: str) -> Path:
    path = Path(path) if path else CHECKPOINTS / default_name
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} not found")
    return path


def onnx_metadata(path) -> dict:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    props = {p.key: p.value for p in model.metadata_props}
    if "melrestore" not in props:
        raise ValueError(f"{path} carries no melrestore metadata (export it with `melrestore export-onnx`)")
    return json.loads(props["melrestore"])


def torch_inpainter(default_name: str):
    def factory(checkpoint=None, batch_size: int = 16, threads: int = 0):
        import torch

        from melrestore.networks import load_checkpoint, model_from_checkpoint

        state = load_checkpoint(_path(checkpoint, default_name))
        model = model_from_checkpoint(state)
        if threads:
            torch.set_num_threads(threads)

        def forward(inputs):
            with torch.inference_mode():
                return model(torch.from_numpy(inputs)).numpy()

        return LearnedInpainter(forward, state, batch_size)

    return factory


def onnx_inpainter(default_name: str):
    def factory(model=None, batch_size: int = 16, threads: int = 0):
        import onnxruntime as ort
        import torch

        path = _path(model, default_name)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # As many threads as torch may use: batch workers lower that to share the cores.
        options.intra_op_num_threads = threads or torch.get_num_threads()
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

        def forward(inputs):
            return session.run(None, {"input": inputs})[0]

        return LearnedInpainter(forward, onnx_metadata(path), batch_size)

    return factory


@hookimpl
def register_inpainters(register):
    register("unet-onnx", onnx_inpainter("unet-44k.onnx"))
    register("unet-torch", torch_inpainter("unet-44k.pt"))
    register("fc-onnx", onnx_inpainter("fc-44k.onnx"))
    register("fc-torch", torch_inpainter("fc-44k.pt"))
