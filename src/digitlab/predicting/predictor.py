"""Read digits and numbers from images with a trained model: load once, batch, judge.

`Predictor.read` → DigitReading, `read_number` → NumberReading (predicting.results);
`predict` gives the probabilities of 28×28 pixels directly. Files and folders: batch.classify.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from digitlab.checkpoints.format import DEFAULT_MODEL, Checkpoint, load_model
from digitlab.checkpoints.integrity import check_finite_outputs
from digitlab.checkpoints.shipped import is_shipped, model_format
from digitlab.data import DATASETS
from digitlab.errors import CheckpointError, ConfigError
from digitlab.models.temperature import temper_probabilities
from digitlab.predicting.backends import Backend, OnnxBackend, TorchBackend, TorchScriptBackend
from digitlab.predicting.explain import Explanation, explain
from digitlab.predicting.line_reader import LineReader
from digitlab.predicting.results import DigitReading, NumberReading
from digitlab.reading.canvas import Prepared
from digitlab.reading.images import ImageInput, to_image, to_images
from digitlab.reading.pipelines import DEFAULT_PIPELINE, preprocess
from digitlab.reading.robust.views import choose_view

logger = logging.getLogger(__name__)

MIN_CONFIDENCE = 0.5
BACKENDS = ("torch", "onnxruntime", "torchscript")
PIXEL_SLACK = 1e-3  # how far outside [0, 1] predict's float pixels may stray (rounding, resampling)
NUMBER_READERS = ("line", "segment")  # how numbers are read: see Predictor.read_number
DEFAULT_NUMBER_READER = "line"
PREDICT_BATCH = 256  # big batches run slower on CPU (measured: 1000 at 2/3 the images/s of 256)


class Predictor:
    """A model loaded once, ready to read images: preprocessing, batching, rejection, numbers.

    What runs the model is its backend (predicting.backends): PyTorch for a checkpoint,
    onnxruntime for an exported .onnx file.
    """

    def __init__(self, backend: Backend, source: str = "the model") -> None:
        self.backend = backend
        self.source = source  # the file it came from, for messages
        self._line_reader: LineReader | None = None

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, device: str = "cpu",
             backend: str | None = None) -> Predictor:
        """Load a checkpoint (the model shipped inside the package when `path` is None,
        `default` or `shipped`) or a file from `digitlab export`; `backend` ("torch",
        "onnxruntime" or "torchscript") defaults by what the file holds (its first bytes)."""
        if backend is None:
            kind = "" if path is None or is_shipped(path) else model_format(path)
            backend = {"onnx": "onnxruntime", "torchscript": "torchscript"}.get(kind, "torch")
        if backend in ("onnxruntime", "torchscript"):
            if is_shipped(path):
                raise ConfigError(f"the {backend} backend needs a file from `digitlab export`")
            assert path is not None
            if backend == "torchscript":
                return cls(TorchScriptBackend(path, device), str(path))
            return cls(OnnxBackend(path), str(path))
        if backend != "torch":
            raise ConfigError(f"unknown backend {backend!r}; choose {', '.join(BACKENDS)}")
        return cls.from_checkpoint(path, device)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str] | None = None, device: str = "cpu") -> Predictor:
        """Load `path`, or the model shipped inside the package when `path` is None (or
        `default`, or `shipped`)."""
        if path is None or is_shipped(path):
            if not DEFAULT_MODEL.is_file():
                raise CheckpointError(
                    "this install has no packaged model; pass --model CHECKPOINT or run `make default-model`"
                )
            path = DEFAULT_MODEL
        model, checkpoint = load_model(path, device)
        return cls(TorchBackend(model, checkpoint, device), str(path))

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
    def predict(self, pixels: torch.Tensor | np.ndarray, calibrated: bool = True) -> torch.Tensor:
        """Class probabilities (N×C) for N×28×28 or N×1×28×28 images (one 28×28 too), a tensor
        or a numpy array of floats in [0, 1] or uint8 0-255: after the temperature, or as
        trained with `calibrated=False` (the same winner either way)."""
        pixels = as_pixels(pixels)
        if len(pixels) == 0:
            return torch.zeros(0, len(self.classes))
        run = self.backend.probabilities
        probabilities = torch.cat([run(chunk, calibrated) for chunk in pixels.split(PREDICT_BATCH)])
        check_finite_outputs(probabilities, self.source)
        return probabilities

    def __repr__(self) -> str:
        checkpoint = self.checkpoint
        model = checkpoint.model_name if checkpoint else Path(self.source).name
        backend = "" if checkpoint else f", backend={self.backend.name!r}"
        return f"Predictor(model={model!r}{backend}, dataset={self.dataset!r}, T={self.temperature:.3g})"

    def with_temperature(self, probabilities: torch.Tensor) -> torch.Tensor:
        """Uncalibrated probabilities (`predict(calibrated=False)`) after the temperature."""
        return temper_probabilities(probabilities, self.temperature)

    def read(self, image: ImageInput, *, top_k: int = 1, pipeline: str | None = None,
             min_confidence: float = MIN_CONFIDENCE) -> DigitReading:
        """The digit in `image`: a path, bytes, a binary file, a PIL image, or a numpy array or
        torch tensor of pixels (H×W or 1×H×W, or an H×W×3/4 array; uint8 or floats in [0, 1]).
        No ink, or a confidence below `min_confidence`, is no digit; `top_k` likeliest classes
        are listed. Many images: `read_digits`, which classifies them as one batch."""
        return self.read_prepared([preprocess(to_image(image), pipeline or self.pipeline)],
                                  min_confidence, top_k=top_k)[0]

    def read_digits(
        self, images: Sequence[ImageInput] | torch.Tensor | np.ndarray, pipeline: str | None = None,
        min_confidence: float = MIN_CONFIDENCE, *, top_k: int = 1,
    ) -> list[DigitReading]:
        """One reading per image, classified as one batch (see `read`): a sequence of images,
        or an N×H×W or N×1×H×W tensor or array (uint8 or floats in [0, 1]).

        `pipeline` defaults to the one that suits the model's data set (`self.pipeline`).
        """
        prepared = [preprocess(image, pipeline or self.pipeline) for image in to_images(images)]
        return self.read_prepared(prepared, min_confidence, top_k=top_k)

    def read_prepared(self, prepared: Sequence[Prepared], min_confidence: float = MIN_CONFIDENCE, *,
                      top_k: int = 1) -> list[DigitReading]:
        """One reading per image already preprocessed (reading.pipelines.preprocess, perhaps in
        another process), classified as one batch."""
        chosen = self._read_views(prepared)
        return [
            self._judge(chosen[i][0], chosen[i][1], min_confidence, top_k, preprocess=p.steps)
            if i in chosen else self._judge(None, p.pixels, min_confidence, top_k, preprocess=p.steps)
            for i, p in enumerate(prepared)
        ]

    def _read_views(self, prepared: Sequence[Prepared]) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
        """Per inked image, the probabilities and pixels of the view it is read from: its only
        one, or the one its views' vote picks (reading.robust.views; the vote goes into its steps)."""
        inked = [i for i, p in enumerate(prepared) if p.has_ink]
        # Every view of every inked image in one batch: the main view first, then its others.
        views = [[prepared[i].pixels, *prepared[i].alternatives.values()] for i in inked]
        batch = [pixels for group in views for pixels in group]
        probabilities = self.predict(torch.stack(batch)) if batch else torch.zeros(0, len(self.classes))
        chosen, start = {}, 0
        for i, group in zip(inked, views, strict=True):
            probs, start = probabilities[start : start + len(group)], start + len(group)
            index = 0
            if len(group) > 1:
                steps = prepared[i].steps
                index, record = choose_view([steps["views"]["main"], *prepared[i].alternatives], probs)
                steps["views"].update(record)
            chosen[i] = probs[index], group[index]
        return chosen

    def explain(self, image: ImageInput, reading: DigitReading | None = None) -> Explanation | None:
        """Why `image` reads as it does: an occlusion map of the view the model saw, for its
        answer (predicting.explain); None when there is no ink. `reading`: `read(image)`'s, if
        already made. `explanation.overlay(picture)` draws it over the picture."""
        picture = to_image(image)
        reading = reading if reading is not None else self.read(picture)
        return explain(lambda x: self.predict(x, calibrated=False), reading, self.classes, picture.size)

    def read_number(self, image: ImageInput, min_confidence: float = MIN_CONFIDENCE, *,
                    top_k: int = 1, reader: str = DEFAULT_NUMBER_READER) -> NumberReading:
        """The digits of a handwritten number, left to right, each with its box (none without
        ink). `reader` "line" reads the whole string at once (the line reader, predicting.line_reader);
        "segment" splits it into digits and reads each with this model."""
        return self.read_numbers([image], min_confidence, top_k=top_k, reader=reader)[0]

    def read_numbers(self, images: Sequence[ImageInput], min_confidence: float = MIN_CONFIDENCE, *,
                     top_k: int = 1, reader: str = DEFAULT_NUMBER_READER) -> list[NumberReading]:
        """One NumberReading per image (see `read_number`), the line reader's as one batch."""
        if reader not in NUMBER_READERS:
            raise ConfigError(f"unknown number reader {reader!r}; choose one of: {', '.join(NUMBER_READERS)}")
        if not self.reads_digits:
            raise ConfigError(f"reading numbers needs a digit model; this one was trained on "
                              f"{self.dataset} ({', '.join(self.classes[:3])}, …)")
        pictures = [to_image(image) for image in images]
        if reader == "line":
            return self.line_reader.read_numbers(pictures, min_confidence, self.classes)
        return [self._segment_number(picture, min_confidence, top_k) for picture in pictures]

    @property
    def line_reader(self) -> LineReader:
        """The line reader numbers are read with: the one given to `use_line_reader`, or the
        one shipped inside the package (loaded the first time it is needed)."""
        if self._line_reader is None:
            self._line_reader = LineReader.load()
        return self._line_reader

    def use_line_reader(self, path: str | os.PathLike[str] | None) -> None:
        """Read numbers with the line reader in checkpoint `path` (None: the shipped one)."""
        self._line_reader = LineReader.load(path)

    def _segment_number(self, picture: Image.Image, min_confidence: float, top_k: int) -> NumberReading:
        from digitlab.reading.segment import segment_number

        # The model settles what geometry cannot: is a loose stroke part of a digit, or one?
        # Its split scores were tuned on the model's own confidences: give it those.
        segmentation = segment_number(picture, classify=lambda x: self.predict(x, calibrated=False))
        raw = [d.probabilities for d in segmentation.digits]
        if all(p is not None for p in raw):  # classified while splitting
            probabilities = [self.with_temperature(p) for p in raw if p is not None]
        else:
            probabilities = list(self.predict(segmentation.pixels))
        digits = [
            self._judge(probs, crop.pixels, min_confidence, top_k, box=crop.box)
            for crop, probs in zip(segmentation.digits, probabilities, strict=True)
        ]
        return NumberReading.of(digits, picture.size)

    def _judge(
        self, probs: torch.Tensor | None, pixels: torch.Tensor, min_confidence: float, top_k: int,
        box: list[int] | None = None, preprocess: dict[str, Any] | None = None,
    ) -> DigitReading:
        """No ink (nothing classified) or too little confidence is no digit, with the reason."""
        if probs is None:
            reason: str | None = (preprocess or {}).get("reason", "no ink")
        elif float(probs.max()) < min_confidence:
            reason = f"confidence {float(probs.max()):.2f} is below {min_confidence:.2f}"
        else:
            reason = None
        return DigitReading.of(probs, self.classes, pixels, reason=reason, top_k=top_k, box=box,
                               preprocess=preprocess)


def as_pixels(pixels: torch.Tensor | np.ndarray) -> torch.Tensor:
    """What `predict` takes → N×28×28 floats in [0, 1]: 28×28, N×28×28 or N×1×28×28, a tensor or
    a numpy array, uint8 (0-255) or floats. Other types are a TypeError; other shapes, or floats
    outside [0, 1] (a normalised tensor), a ValueError."""
    if isinstance(pixels, np.ndarray):
        pixels = torch.from_numpy(pixels)
    if not isinstance(pixels, torch.Tensor):
        raise TypeError(f"predict() takes a torch tensor or numpy array of N×28×28 or N×1×28×28 "
                        f"pixels, not {type(pixels).__name__}; read() takes paths and pictures")
    if pixels.dim() == 4 and pixels.shape[1] == 1:  # torchvision's N×1×H×W
        pixels = pixels[:, 0]
    if pixels.dim() == 2:
        pixels = pixels.unsqueeze(0)
    if pixels.dim() != 3 or tuple(pixels.shape[1:]) != (28, 28):
        raise ValueError(f"predict() takes N×28×28 or N×1×28×28 pixels, not "
                         f"{'×'.join(map(str, pixels.shape))}; read() prepares any picture")
    if pixels.dtype == torch.uint8:
        return pixels.float() / 255
    if not pixels.is_floating_point():
        raise TypeError(f"predict() takes uint8 (0-255) or float (0-1) pixels, not {pixels.dtype}")
    if len(pixels) and not (float(pixels.min()) >= -PIXEL_SLACK and float(pixels.max()) <= 1 + PIXEL_SLACK):
        raise ValueError("predict() takes pixels in [0, 1]; a normalised MNIST tensor is not: "
                         "undo it first (x * 0.3081 + 0.1307)")
    return pixels
