"""Exporting a checkpoint to ONNX, checked against PyTorch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from .atomic import atomic_target
from .networks import prepare
from .states import ModelMeta, load_checkpoint, write_onnx_meta

OPSET = 17  # supported by every onnxruntime >= 1.17
TOLERANCE = 1e-4  # the largest difference between ONNX Runtime and PyTorch an export may show


class ParityError(Exception):
    """ONNX Runtime disagrees with PyTorch by more than the tolerance: the file was not written.
    ``report`` holds every case's max abs difference."""

    def __init__(self, report: dict, tolerance: float):
        self.report, self.tolerance = report, tolerance
        super().__init__(f"ONNX Runtime disagrees with PyTorch by {max(report.values()):.2e}, more than {tolerance:g}")


class ExampleTooShortError(ValueError):
    """The example audio is shorter than every window of the model."""


def export_onnx(checkpoint: Path, out: Path, real_inputs: np.ndarray | None = None, tolerance: float | None = None) -> dict:
    """Write ``out`` (dynamic batch and frame axes, metadata from the checkpoint) after comparing
    ONNX Runtime with PyTorch; returns the max abs differences.  The file is written beside ``out``
    and renamed over it only once the comparison passes: an export that fails or is stopped
    leaves an earlier ``out`` as it was (:class:`ParityError` when the runtimes differ by more than
    ``tolerance``, by default :data:`TOLERANCE`; an ``OSError`` where ``out`` cannot be written)."""
    tolerance = TOLERANCE if tolerance is None else tolerance
    saved = load_checkpoint(checkpoint)
    meta, model = saved.meta, saved.model()
    n_mels, planes = meta.model_config["n_mels"], meta.planes
    windows = meta.window_frames
    example = torch.zeros(2, planes, n_mels, windows[0])
    out = Path(out)
    frame_axis = {} if meta.architecture == "fc" else {3: "frames"}
    with atomic_target(out, mode_of=out if out.is_file() else None) as tmp:
        torch.onnx.export(
            model,
            (example,),
            tmp,
            input_names=["input"],
            output_names=["correction"],
            dynamic_axes={"input": {0: "batch", **frame_axis}, "correction": {0: "batch", **frame_axis}},
            opset_version=OPSET,
            dynamo=False,
        )
        proto = onnx.load(tmp, format="protobuf")  # the temporary's name tells onnx no format
        write_onnx_meta(proto, meta)
        onnx.checker.check_model(proto, full_check=True)
        onnx.save(proto, tmp, format="protobuf")

        session = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
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
        if max(report.values()) > tolerance:
            raise ParityError(report, tolerance)
    return report


def real_inputs_from(audio: np.ndarray, sample_rate: int, meta: ModelMeta) -> np.ndarray:
    """Network inputs from real audio ``[channels, samples]`` for a model: the longest of its
    windows that the audio fills (from its start), at the model's analysis settings, with a gap a
    quarter of the window long in the middle.  Audio shorter than every window:
    :class:`ExampleTooShortError`."""
    from .mel import MelFrontend, resample

    frontend = MelFrontend(meta.settings)
    audio = resample(audio, sample_rate, meta.settings.sample_rate)
    # A shorter window rather than padding or looping the audio: every frame stays real music, and
    # each window is one the engine hands the network (the random cases cover the longer ones).
    fitting = [w for w in meta.window_frames if meta.settings.samples_for(w) <= audio.shape[1]]
    if not fitting:
        shortest = meta.window_frames[0]
        raise ExampleTooShortError(
            f"{audio.shape[1] / meta.settings.sample_rate:.2f} s long, shorter than the model's shortest window "
            f"({shortest} frames, {meta.settings.samples_for(shortest) / meta.settings.sample_rate:.2f} s)")
    segment = audio[:, : meta.settings.samples_for(fitting[-1])]
    missing = np.zeros(segment.shape[1], dtype=bool)
    missing[3 * len(missing) // 8 : 5 * len(missing) // 8] = True
    return prepare(*frontend.analyse_with_gap(segment, missing), meta.planes)[0]
