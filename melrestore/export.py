"""Exporting a checkpoint to ONNX, checked against PyTorch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from .networks import prepare
from .states import ModelMeta, load_checkpoint, write_onnx_meta

OPSET = 17  # supported by every onnxruntime >= 1.17


def export_onnx(checkpoint: Path, out: Path, real_inputs: np.ndarray | None = None) -> dict:
    """Write ``out`` (dynamic batch and frame axes, metadata from the checkpoint) and compare
    ONNX Runtime with PyTorch; returns the max abs differences."""
    saved = load_checkpoint(checkpoint)
    meta, model = saved.meta, saved.model()
    n_mels, planes = meta.model_config["n_mels"], meta.planes
    windows = meta.window_frames
    example = torch.zeros(2, planes, n_mels, windows[0])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame_axis = {} if meta.architecture == "fc" else {3: "frames"}
    torch.onnx.export(
        model,
        (example,),
        str(out),
        input_names=["input"],
        output_names=["correction"],
        dynamic_axes={"input": {0: "batch", **frame_axis}, "correction": {0: "batch", **frame_axis}},
        opset_version=OPSET,
        dynamo=False,
    )
    proto = onnx.load(str(out))
    write_onnx_meta(proto, meta)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(out))

    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    cases = {f"random_b{b}_t{t}": rng.standard_normal((b, planes, n_mels, t)).astype(np.float32) for b in (1, 16) for t in windows}
    if real_inputs is not None:
        cases["real"] = real_inputs
    report = {}
    with torch.inference_mode():
        for name, inputs in cases.items():
            expected = model(torch.from_numpy(inputs)).numpy()
            got = session.run(None, {"input": inputs})[0]
            report[name] = float(np.abs(expected - got).max())
    return report


def real_inputs_from(audio: np.ndarray, sample_rate: int, meta: ModelMeta) -> np.ndarray:
    """Network inputs from real audio ``[channels, samples]`` for a model: its largest window at the
    model's analysis settings, with a gap a quarter of the window long in the middle."""
    from .mel import MelFrontend, resample

    frontend = MelFrontend(meta.settings)
    audio = resample(audio, sample_rate, meta.settings.sample_rate)
    segment = audio[:, : meta.settings.samples_for(meta.window_frames[-1])]
    missing = np.zeros(segment.shape[1], dtype=bool)
    missing[3 * len(missing) // 8 : 5 * len(missing) // 8] = True
    return prepare(*frontend.analyse_with_gap(segment, missing), meta.planes)[0]
