"""Read digits and numbers from images with a trained model: load once, batch, report per input."""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from digitlab.data import DATASETS
from digitlab.errors import CheckpointError, ConfigError, DigitlabError
from digitlab.models.temperature import temper_probabilities
from digitlab.reading.backends import Backend, OnnxBackend, TorchBackend
from digitlab.reading.images import IMAGE_SUFFIXES, load_image
from digitlab.reading.pipelines import DEFAULT_PIPELINE, preprocess
from digitlab.training.checkpoint import DEFAULT_MODEL, Checkpoint, load_model

logger = logging.getLogger(__name__)

MIN_CONFIDENCE = 0.5
PREDICT_BATCH = 256  # big batches run slower on CPU (measured: 1000 at 2/3 the images/s of 256)


@dataclass
class Reading:
    """What the model read in one image (or one digit of a number)."""

    probabilities: torch.Tensor | None  # None when there was no ink to classify
    pixels: torch.Tensor  # the 28×28 the model saw
    steps: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None  # why there is no digit, if there is none
    box: list[int] | None = None

    @property
    def digit(self) -> int | None:
        return None if self.reason or self.probabilities is None else int(self.probabilities.argmax())

    @property
    def confidence(self) -> float:
        return float(self.probabilities.max()) if self.probabilities is not None else 0.0


class Predictor:
    """A model loaded once, ready to read images: preprocessing, batching, rejection, numbers.

    What runs the model is its backend (reading.backends): PyTorch for a checkpoint,
    onnxruntime for an exported .onnx file.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, device: str = "cpu",
             backend: str | None = None) -> Predictor:
        """Load a checkpoint (the model shipped inside the package when `path` is None) or an
        exported .onnx file; `backend` ("torch" or "onnxruntime") defaults by the file's suffix."""
        if backend is None:
            onnx = path is not None and Path(path).suffix.lower() == ".onnx"
            backend = "onnxruntime" if onnx else "torch"
        if backend == "onnxruntime":
            if path is None:
                raise ConfigError("the onnxruntime backend needs a .onnx file from `digitlab export`")
            return cls(OnnxBackend(path))
        if backend != "torch":
            raise ConfigError(f"unknown backend {backend!r}; choose torch or onnxruntime")
        return cls.from_checkpoint(path, device)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str] | None = None, device: str = "cpu") -> Predictor:
        """Load `path`, or the model shipped inside the package when `path` is None."""
        if path is None:
            if not DEFAULT_MODEL.is_file():
                raise CheckpointError(
                    "this install has no packaged model; pass --model CHECKPOINT or run `make default-model`"
                )
            path = DEFAULT_MODEL
        model, checkpoint = load_model(path, device)
        return cls.from_model(model, checkpoint, device)

    @classmethod
    def from_model(cls, model: torch.nn.Module, checkpoint: Checkpoint,
                   device: torch.device | str = "cpu") -> Predictor:
        """A predictor around a model already in memory (its checkpoint gives classes and the rest)."""
        return cls(TorchBackend(model, checkpoint, device))

    @property
    def checkpoint(self) -> Checkpoint | None:
        """The checkpoint the model came from (None for an exported file)."""
        return self.backend.checkpoint

    @property
    def classes(self) -> list[str]:
        return self.backend.classes

    @property
    def dataset(self) -> str:
        """The data set the model was trained on (its name in digitlab.data.datasets.DATASETS)."""
        return self.backend.dataset

    @property
    def reads_digits(self) -> bool:
        """Whether the classes are digits: numbers can be read, "no digit" makes sense."""
        spec = DATASETS.get(self.dataset)
        return spec.digits if spec is not None else self.classes == [str(d) for d in range(10)]

    @property
    def pipeline(self) -> str:
        """The preprocessing that suits the model's data set (robust for digits)."""
        spec = DATASETS.get(self.dataset)
        return spec.pipeline if spec is not None else DEFAULT_PIPELINE

    @property
    def temperature(self) -> float:
        """Confidences are softmax(log-probabilities / T); T = 1 unless `pack --calibrate` set it."""
        return self.backend.temperature

    @torch.inference_mode()
    def predict(self, pixels: torch.Tensor, calibrated: bool = True) -> torch.Tensor:
        """Class probabilities for N×28×28 (or 28×28) images scaled to [0, 1]: after the
        temperature, or as trained with `calibrated=False` (the same winner either way)."""
        if pixels.dim() == 2:
            pixels = pixels.unsqueeze(0)
        if len(pixels) == 0:
            return torch.zeros(0, len(self.classes))
        run = self.backend.probabilities
        return torch.cat([run(chunk, calibrated) for chunk in pixels.split(PREDICT_BATCH)])

    def with_temperature(self, probabilities: torch.Tensor) -> torch.Tensor:
        """Uncalibrated probabilities (`predict(calibrated=False)`) after the temperature."""
        return temper_probabilities(probabilities, self.temperature)

    def read_digits(
        self, images: Sequence[Image.Image], pipeline: str | None = None,
        min_confidence: float = MIN_CONFIDENCE,
    ) -> list[Reading]:
        """One reading per image, classified as one batch; no ink or low confidence → no digit.

        `pipeline` defaults to the one that suits the model's data set (`self.pipeline`).
        """
        prepared = [preprocess(image, pipeline or self.pipeline) for image in images]
        inked = [i for i, p in enumerate(prepared) if p.has_ink]
        probabilities = self.predict(torch.stack([prepared[i].pixels for i in inked])) if inked else []
        readings = [
            Reading(None, p.pixels, p.steps, reason=p.steps.get("reason", "no ink")) for p in prepared
        ]
        for i, probs in zip(inked, probabilities, strict=True):
            readings[i] = self._judge(probs, prepared[i].pixels, prepared[i].steps, min_confidence)
        return readings

    def read_number(self, image: Image.Image, min_confidence: float = MIN_CONFIDENCE) -> list[Reading]:
        """The digits of a handwritten number, left to right (empty when there is no ink)."""
        from digitlab.reading.segment import segment_number

        if not self.reads_digits:
            raise ConfigError(f"reading numbers needs a digit model; this one was trained on "
                              f"{self.dataset} ({', '.join(self.classes[:3])}, …)")

        # The model settles what geometry cannot: is a loose stroke part of a digit, or one?
        # Its split scores were tuned on the model's own confidences: give it those.
        segmentation = segment_number(image, classify=lambda x: self.predict(x, calibrated=False))
        if all(d.probabilities is not None for d in segmentation.digits):  # classified while splitting
            probabilities = [self.with_temperature(d.probabilities) for d in segmentation.digits]
        else:
            probabilities = self.predict(segmentation.pixels)
        return [
            self._judge(probs, crop.pixels, {}, min_confidence, crop.box)
            for crop, probs in zip(segmentation.digits, probabilities, strict=True)
        ]

    def _judge(
        self, probs: torch.Tensor, pixels: torch.Tensor, steps: dict[str, Any],
        min_confidence: float, box: list[int] | None = None,
    ) -> Reading:
        reason = None
        if float(probs.max()) < min_confidence:
            reason = f"confidence {float(probs.max()):.2f} is below {min_confidence:.2f}"
        return Reading(probs, pixels, steps, reason=reason, box=box)

    def describe(self, reading: Reading, top_k: int = 1) -> dict[str, Any]:
        """A JSON-ready description of `reading`."""
        result: dict[str, Any] = {
            "digit": reading.digit,
            "label": self.classes[reading.digit] if reading.digit is not None else None,
            "confidence": round(reading.confidence, 6),
            "no_digit": reading.digit is None,
        }
        if reading.reason:
            result["reason"] = reading.reason
        if reading.box is not None:
            result["box"] = reading.box
        if reading.probabilities is not None:
            values, indices = reading.probabilities.topk(min(top_k, len(reading.probabilities)))
            result["probabilities"] = [round(float(p), 6) for p in reading.probabilities]
            result["top_k"] = [
                {"digit": int(i), "label": self.classes[int(i)], "probability": round(float(v), 6)}
                for v, i in zip(values, indices, strict=True)
            ]
        return result

    def describe_number(self, readings: Sequence[Reading], top_k: int = 1) -> dict[str, Any]:
        text = "".join(self.classes[r.digit] if r.digit is not None else "?" for r in readings)
        return {
            "number": text if readings and "?" not in text else None,
            "text": text,
            "no_digit": not readings,
            "confidence": round(min((r.confidence for r in readings), default=0.0), 6),
            "digits": [self.describe(r, top_k) for r in readings],
        }


def expand_inputs(inputs: Sequence[str]) -> list[str]:
    """Files as given, folders as their images (sorted), globs expanded (sorted).

    Something that matches nothing stays in the list so its error is reported in order.
    """
    found: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += sorted(
                str(p) for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
        elif not path.exists() and glob.has_magic(item):
            matches = sorted(glob.glob(item, recursive=True))
            found += matches or [item]
        else:
            found.append(item)
    return found


def load_images(paths: Sequence[str]) -> list[Image.Image | DigitlabError]:
    """Each path's image, or the error that says why it cannot be read."""
    images: list[Image.Image | DigitlabError] = []
    for path in paths:
        try:
            images.append(load_image(path))
        except DigitlabError as e:
            images.append(e)
    return images


def classify_files(
    predictor: Predictor,
    paths: Sequence[str],
    *,
    top_k: int = 1,
    pipeline: str | None = None,
    min_confidence: float = MIN_CONFIDENCE,
    number: bool = False,
    show_dir: Path | None = None,
) -> list[dict[str, Any]]:
    """One JSON-ready result per path, in order; an unreadable file gets an `error` entry only."""
    images = load_images(paths)
    good = [i for i, image in enumerate(images) if isinstance(image, Image.Image)]
    readings: dict[int, list[Reading]]
    if number:
        readings = {i: predictor.read_number(images[i], min_confidence) for i in good}  # type: ignore[arg-type]
    else:
        batch = predictor.read_digits([images[i] for i in good], pipeline, min_confidence)  # type: ignore[misc]
        readings = {i: [reading] for i, reading in zip(good, batch, strict=True)}
    results: list[dict[str, Any]] = []
    for i, path in enumerate(paths):
        image = images[i]
        if not isinstance(image, Image.Image):
            results.append({"path": str(path), "error": str(image)})
            continue
        if number:
            result = {"path": str(path), **predictor.describe_number(readings[i], top_k)}
        else:
            reading = readings[i][0]
            result = {"path": str(path), **predictor.describe(reading, top_k), "preprocess": reading.steps}
        if show_dir is not None:
            result["show"] = str(write_show(predictor, image, readings[i], result, show_dir, i))
        results.append(result)
    return results


def write_show(
    predictor: Predictor, image: Image.Image, readings: Sequence[Reading], result: dict[str, Any],
    folder: Path, index: int,
) -> Path:
    """Save the picture `classify --show` promises: original, 28×28 seen, probability bars."""
    import numpy as np

    from digitlab.reports.plots import plot_prediction, save_figure

    answer = result.get("text") if "text" in result else result.get("label")
    nothing = "no digit" if predictor.reads_digits else "nothing recognised"
    title = f"{Path(result['path']).name}: {answer if answer else nothing}"
    if result.get("reason"):
        title += f" ({result['reason']})"
    shown = [r for r in readings if r.probabilities is not None]
    fig = plot_prediction(
        np.asarray(image.convert("RGB")),
        [r.pixels.numpy() for r in shown],
        [r.probabilities.tolist() for r in shown],  # type: ignore[union-attr]
        predictor.classes, title, boxes=[r.box for r in shown if r.box is not None],
    )
    path = folder / f"{index:04d}-{Path(result['path']).stem}.png"
    save_figure(fig, path)
    return path
