"""What runs the model for a Predictor: PyTorch (a checkpoint) or onnxruntime (an exported file).

A backend turns one batch of N×28×28 pixels in [0, 1] into N×C probabilities, calibrated
(after the temperature) or as trained, and knows the class names, the data set and the
temperature. Preprocessing, rejection, numbers and results are the Predictor's, shared by both.
"""

from __future__ import annotations

import json
import os
from typing import Any, Protocol

import torch

from digitlab.checkpoints.format import Checkpoint
from digitlab.checkpoints.integrity import class_names_problem
from digitlab.data.normalise import normalise
from digitlab.errors import ConfigError
from digitlab.models.fusion import fold_batch_norm
from digitlab.models.temperature import apply_temperature, temper_probabilities


class Backend(Protocol):
    """The model behind a Predictor."""

    name: str  # "torch", "onnxruntime" or "torchscript": what `--backend` calls it
    classes: list[str]
    dataset: str  # its name in digitlab.data.datasets.DATASETS
    temperature: float  # confidences are softmax(logits / T); 1 unless `pack --calibrate` set it

    @property
    def checkpoint(self) -> Checkpoint | None: ...

    def probabilities(self, pixels: torch.Tensor, calibrated: bool) -> torch.Tensor: ...


class TorchBackend:
    """A checkpoint's model in PyTorch, made cheaper to run (batch norm folded, channels-last)."""

    name = "torch"

    def __init__(self, model: torch.nn.Module, checkpoint: Checkpoint,
                 device: torch.device | str = "cpu") -> None:
        # Channels-last convolutions run about twice as fast on CPU (measured: one image
        # 1.4 → 0.6 ms, batches 1.7× the images/s); the weights are the same numbers.
        self.model = fold_batch_norm(model.eval()).to(memory_format=torch.channels_last)
        self._checkpoint, self.device = checkpoint, torch.device(device)
        self.classes, self.dataset = checkpoint.classes, checkpoint.dataset
        self.temperature = checkpoint.temperature

    @property
    def checkpoint(self) -> Checkpoint:
        return self._checkpoint

    def probabilities(self, pixels: torch.Tensor, calibrated: bool) -> torch.Tensor:
        if len(pixels) == 1:
            # A batch of one runs other CPU kernels, whose last bits differ (up to 1e-6); run
            # it as two so that an image gets the same numbers alone as in any batch.
            return self.probabilities(pixels.expand(2, *pixels.shape[1:]), calibrated)[:1]
        x = normalise(pixels.to(self.device, torch.float32).unsqueeze(1), self._checkpoint.mean,
                      self._checkpoint.std).contiguous(memory_format=torch.channels_last)
        log_probs = self.model(x).cpu()
        if calibrated and self.temperature != 1.0:
            return apply_temperature(log_probs, self.temperature)  # log-probs are logits too
        return log_probs.exp()


def onnx_session(path: str | os.PathLike[str], threads: int | None = None) -> Any:
    """An onnxruntime CPU session for an exported file."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ConfigError("the onnxruntime backend needs `pip install 'digitlab[export]'`") from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1  # one graph, run node after node: no second pool to wait on
    # ALL fuses conv+bias+ReLU and picks blocked layouts: measured 1.31× PyTorch's images/s per
    # CPU-second for the shipped model (BASIC: 0.89×), the same digit for all 10,000 test images
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for bad files
        raise ConfigError(f"{path} is not an ONNX model onnxruntime can run ({e})") from None


class OnnxBackend:
    """A file from `digitlab export --format onnx`, run by onnxruntime on the CPU.

    The graph holds the normalisation, the temperature and the softmax (digitlab.export).
    """

    name = "onnxruntime"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.session = onnx_session(path)
        self.uint8 = "uint8" in self.session.get_inputs()[0].type
        meta = self.session.get_modelmeta().custom_metadata_map
        if "classes" not in meta:
            raise ConfigError(f"{path} was not exported by `digitlab export` (no class names in it)")
        try:
            classes = json.loads(meta["classes"])
        except ValueError:
            classes = meta["classes"]
        problem = class_names_problem(classes, len(classes) if isinstance(classes, list) else 0)
        if problem is not None:
            raise ConfigError(f"{path}: {problem}")
        self.classes: list[str] = classes
        self.dataset: str = meta.get("dataset", "mnist")  # exports before data sets were named
        self.temperature = float(meta.get("temperature", 1.0))  # inside the graph's softmax

    @property
    def checkpoint(self) -> None:
        return None

    def probabilities(self, pixels: torch.Tensor, calibrated: bool) -> torch.Tensor:
        x = (pixels * 255).round().to(torch.uint8) if self.uint8 else pixels.to(torch.float32)
        probabilities = torch.from_numpy(self.session.run(None, {"pixels": x.contiguous().numpy()})[0])
        # the graph's softmax(z / T): nothing to add on the hot path; as trained, undo the T
        return probabilities if calibrated else temper_probabilities(probabilities, 1 / self.temperature)


class TorchScriptBackend:
    """A file from `digitlab export --format torchscript`, run by PyTorch's TorchScript runtime.

    Like the ONNX graph, it holds the normalisation, the temperature and the softmax; its
    extra files name the classes (and, from exports that wrote them, the data set, the
    temperature and whether it takes uint8 pixels).
    """

    name = "torchscript"

    def __init__(self, path: str | os.PathLike[str], device: torch.device | str = "cpu") -> None:
        import warnings

        extra = {"classes.json": "", "digitlab.json": ""}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # TorchScript's deprecation
                self.module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
        except Exception as e:  # the runtime raises its own types for bad files
            raise ConfigError(f"{path} is not a TorchScript model PyTorch can run ({e})") from None
        if not extra["classes.json"]:
            raise ConfigError(f"{path} was not exported by `digitlab export` (no class names in it)")
        meta = json.loads(extra["digitlab.json"] or "{}")
        self.classes: list[str] = json.loads(extra["classes.json"])
        self.dataset: str = meta.get("dataset", "mnist")
        self.temperature = float(meta.get("temperature", 1.0))  # inside the module's softmax
        self.uint8 = meta.get("input") == "uint8"
        self.device = torch.device(device)

    @property
    def checkpoint(self) -> None:
        return None

    def probabilities(self, pixels: torch.Tensor, calibrated: bool) -> torch.Tensor:
        x = (pixels * 255).round().to(torch.uint8) if self.uint8 else pixels.to(torch.float32)
        probabilities = self.module(x.to(self.device)).cpu()
        return probabilities if calibrated else temper_probabilities(probabilities, 1 / self.temperature)
