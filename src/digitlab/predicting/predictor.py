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

import torch

from digitlab.checkpoints.format import DEFAULT_MODEL, Checkpoint, load_model
from digitlab.checkpoints.integrity import check_finite_outputs
from digitlab.data import DATASETS
from digitlab.errors import CheckpointError, ConfigError
from digitlab.models.temperature import temper_probabilities
from digitlab.predicting.backends import Backend, OnnxBackend, TorchBackend
from digitlab.predicting.results import DigitReading, NumberReading
from digitlab.reading.canvas import Prepared
from digitlab.reading.images import ImageInput, to_image
from digitlab.reading.pipelines import DEFAULT_PIPELINE, preprocess
from digitlab.reading.robust.views import choose_view

logger = logging.getLogger(__name__)

MIN_CONFIDENCE = 0.5
PREDICT_BATCH = 256  # big batches run slower on CPU (measured: 1000 at 2/3 the images/s of 256)


class Predictor:
    """A model loaded once, ready to read images: preprocessing, batching, rejection, numbers.

    What runs the model is its backend (predicting.backends): PyTorch for a checkpoint,
    onnxruntime for an exported .onnx file.
    """

    def __init__(self, backend: Backend, source: str = "the model") -> None:
        self.backend = backend
        self.source = source  # the file it came from, for messages

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
            return cls(OnnxBackend(path), str(path))
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
    def predict(self, pixels: torch.Tensor, calibrated: bool = True) -> torch.Tensor:
        """Class probabilities for N×28×28 (or 28×28) images scaled to [0, 1]: after the
        temperature, or as trained with `calibrated=False` (the same winner either way)."""
        if pixels.dim() == 2:
            pixels = pixels.unsqueeze(0)
        if len(pixels) == 0:
            return torch.zeros(0, len(self.classes))
        run = self.backend.probabilities
        probabilities = torch.cat([run(chunk, calibrated) for chunk in pixels.split(PREDICT_BATCH)])
        check_finite_outputs(probabilities, self.source)
        return probabilities

    def with_temperature(self, probabilities: torch.Tensor) -> torch.Tensor:
        """Uncalibrated probabilities (`predict(calibrated=False)`) after the temperature."""
        return temper_probabilities(probabilities, self.temperature)

    def read(self, image: ImageInput, *, top_k: int = 1, pipeline: str | None = None,
             min_confidence: float = MIN_CONFIDENCE) -> DigitReading:
        """The digit in `image`: a path, bytes, a PIL image or a numpy array (H×W grey or
        H×W×3/4, uint8 or float in [0, 1]). No ink, or a confidence below `min_confidence`,
        is no digit; `top_k` likeliest classes are listed."""
        return self.read_digits([image], pipeline, min_confidence, top_k=top_k)[0]

    def read_digits(
        self, images: Sequence[ImageInput], pipeline: str | None = None,
        min_confidence: float = MIN_CONFIDENCE, *, top_k: int = 1,
    ) -> list[DigitReading]:
        """One reading per image, classified as one batch (see `read`).

        `pipeline` defaults to the one that suits the model's data set (`self.pipeline`).
        """
        prepared = [preprocess(to_image(image), pipeline or self.pipeline) for image in images]
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

    def read_number(self, image: ImageInput, min_confidence: float = MIN_CONFIDENCE, *,
                    top_k: int = 1) -> NumberReading:
        """The digits of a handwritten number, left to right, each with its box (none without ink)."""
        from digitlab.reading.segment import segment_number

        if not self.reads_digits:
            raise ConfigError(f"reading numbers needs a digit model; this one was trained on "
                              f"{self.dataset} ({', '.join(self.classes[:3])}, …)")
        picture = to_image(image)
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
