"""Export a trained model for use outside Python's PyTorch: ONNX or TorchScript.

The exported graph takes N×28×28 images as the preprocessing makes them (float in [0, 1], or
uint8 0-255 with `input_dtype="uint8"`) and returns N×C class probabilities: the
normalisation is inside, so a caller needs no constants from the checkpoint. The batch size
is dynamic. Before anything is written, the export is run on the whole MNIST test set beside
PyTorch; it is refused unless every prediction is identical and the probabilities agree to
MAX_DIFFERENCE. The file appears only once that check has passed (temp file, then rename).
"""

from __future__ import annotations

import io
import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from digitlab.checkpoints.format import Checkpoint
from digitlab.data.normalise import normalise
from digitlab.errors import ConfigError, DigitlabError
from digitlab.files import atomic_path
from digitlab.models.temperature import apply_temperature
from digitlab.predicting.backends import onnx_session
from digitlab.predicting.predictor import PREDICT_BATCH

logger = logging.getLogger(__name__)

FORMATS = ("onnx", "torchscript")
INPUT_DTYPES = ("float", "uint8")
MAX_DIFFERENCE = 1e-4  # largest allowed |probability difference| against PyTorch


class ExportError(DigitlabError):
    """The exported model does not reproduce PyTorch (or could not be made)."""


class Exportable(nn.Module):
    """`model` with its normalisation, temperature and softmax inside: N×28×28 pixels → N×C
    probabilities, the same numbers as Predictor.predict (digitlab.predicting.backends.TorchBackend)."""

    def __init__(self, model: nn.Module, mean: float, std: float, input_dtype: str = "float",
                 temperature: float = 1.0) -> None:
        super().__init__()
        self.model = model.eval()
        self.mean, self.std, self.temperature = mean, std, temperature
        self.max_value = 255.0 if input_dtype == "uint8" else 1.0
        self.eval()  # the wrapper too: exporters warn about (and trace) modules in training mode

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = normalise(pixels.unsqueeze(1).to(torch.float32), self.mean, self.std, self.max_value)
        return apply_temperature(self.model(x), self.temperature)


@dataclass
class ExportCheck:
    """How the export compared with PyTorch on the check images."""

    images: int
    max_difference: float
    same_predictions: bool

    def to_dict(self) -> dict[str, Any]:
        return {"images": self.images, "max_difference": self.max_difference,
                "same_predictions": self.same_predictions}


def _batches(pixels: torch.Tensor) -> list[torch.Tensor]:
    return list(pixels.split(PREDICT_BATCH))


def _export_onnx(module: Exportable, example: torch.Tensor, path: Path, classes: list[str],
                 dataset: str = "mnist") -> None:
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch's ONNX exporter needs it)
    except ImportError:
        raise ConfigError("ONNX export needs `pip install 'digitlab[export]'`") from None
    batch = torch.export.Dim("batch", min=1)
    program = torch.onnx.export(
        module, (example,), input_names=["pixels"], output_names=["probabilities"],
        dynamic_shapes={"pixels": {0: batch}}, dynamo=True, verbose=False,
    )
    if program is None:  # only when exporting to a file name, which we do not
        raise ExportError("torch.onnx.export returned no program")
    proto = program.model_proto
    onnx.helper.set_model_props(proto, {
        "classes": json.dumps(classes), "dataset": dataset, "exporter": "digitlab",
        "temperature": repr(module.temperature),  # already inside the graph; for OnnxBackend
    })
    onnx.save(proto, str(path))


def _export_torchscript(module: Exportable, example: torch.Tensor, path: Path,
                        classes: list[str]) -> None:
    # TorchScript is deprecated in favour of torch.export, but C++ (libtorch) and older
    # runtimes still load it; asking for it is the user's choice, so spare them the warnings.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(module, example)
        # Into memory first: torch.jit.save's file writer aborts the whole process when the
        # disk fills (it throws in a C++ destructor); a Python write raises OSError instead.
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files={"classes.json": json.dumps(classes)})
    path.write_bytes(buffer.getvalue())


def _run_onnx(path: Path, pixels: torch.Tensor) -> torch.Tensor:
    session = onnx_session(path)
    return torch.cat([torch.from_numpy(session.run(None, {"pixels": b.numpy()})[0])
                      for b in _batches(pixels)])


def _run_torchscript(path: Path, pixels: torch.Tensor) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.load(str(path), map_location="cpu")
    with torch.inference_mode():
        return torch.cat([scripted(b) for b in _batches(pixels)])


def export_model(
    model: nn.Module, checkpoint: Checkpoint, out: str | os.PathLike[str], fmt: str,
    check_pixels: torch.Tensor, input_dtype: str = "float",
) -> ExportCheck:
    """Export `model` to `out` as `fmt`, after checking it against PyTorch on `check_pixels`
    (N×28×28 in [0, 1]); raises ExportError, and writes nothing, when they disagree."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if input_dtype not in INPUT_DTYPES:
        raise ConfigError(f"unknown input type {input_dtype!r}; choose one of: {', '.join(INPUT_DTYPES)}")
    module = Exportable(model.cpu(), checkpoint.mean, checkpoint.std, input_dtype,
                        checkpoint.temperature)
    inputs = (check_pixels * 255).round().to(torch.uint8) if input_dtype == "uint8" else check_pixels
    with torch.inference_mode():
        expected = torch.cat([module(b) for b in _batches(inputs)])
    if not bool(torch.isfinite(expected).all()):
        raise ExportError("the model's own probabilities are not finite (NaN or inf): its weights "
                          "or normalisation are broken; nothing was written")
    example = inputs[:2].clone()
    with atomic_path(out) as tmp:
        try:
            if fmt == "onnx":
                _export_onnx(module, example, tmp, checkpoint.classes, checkpoint.dataset)
                got = _run_onnx(tmp, inputs)
            else:
                _export_torchscript(module, example, tmp, checkpoint.classes)
                got = _run_torchscript(tmp, inputs)
        except (DigitlabError, OSError):  # an OSError is the output's: atomic_path names it
            raise
        except Exception as e:  # the exporters raise many kinds; say which step failed
            raise ExportError(f"could not export to {fmt}: {type(e).__name__}: {e}") from None
        check = ExportCheck(
            images=len(inputs),
            max_difference=float((got - expected).abs().max()),
            same_predictions=bool(torch.equal(got.argmax(1), expected.argmax(1))),
        )
        # `not <=`, never `>`: a NaN difference must fail the check, not slip past it
        if not check.same_predictions or not check.max_difference <= MAX_DIFFERENCE:
            raise ExportError(
                f"the {fmt} export does not reproduce PyTorch on {check.images} images "
                f"(max difference {check.max_difference:.2e}, same predictions: "
                f"{check.same_predictions}); nothing was written"
            )
    logger.info("exported %s: max difference %.2e on %d images", out, check.max_difference,
                check.images)
    return check

