"""Classify images with a trained model: load once, batch, report per input."""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from digitlab.checkpoint import Checkpoint, load_model
from digitlab.errors import DigitlabError
from digitlab.preprocess import DEFAULT_PIPELINE, IMAGE_SUFFIXES, load_image, preprocess

logger = logging.getLogger(__name__)


class Predictor:
    """A model loaded once, with its normalisation and class names."""

    def __init__(self, model: torch.nn.Module, checkpoint: Checkpoint, device: torch.device) -> None:
        self.model, self.checkpoint, self.device = model, checkpoint, device

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], device: str = "cpu") -> Predictor:
        model, checkpoint = load_model(path, device)
        return cls(model, checkpoint, torch.device(device))

    @property
    def classes(self) -> list[str]:
        return self.checkpoint.classes

    @torch.inference_mode()
    def predict(self, pixels: torch.Tensor) -> torch.Tensor:
        """Class probabilities for N×28×28 (or 28×28) images scaled to [0, 1]."""
        if pixels.dim() == 2:
            pixels = pixels.unsqueeze(0)
        x = pixels.to(self.device, torch.float32).unsqueeze(1)
        x = (x - self.checkpoint.mean) / self.checkpoint.std
        return self.model(x).exp().cpu()

    def describe(self, path: str, probabilities: torch.Tensor, top_k: int) -> dict[str, Any]:
        values, indices = probabilities.topk(min(top_k, len(probabilities)))
        best = int(indices[0])
        return {
            "path": path,
            "digit": best,
            "label": self.classes[best],
            "confidence": round(float(values[0]), 6),
            "probabilities": [round(float(p), 6) for p in probabilities],
            "top_k": [
                {"digit": int(i), "label": self.classes[int(i)], "probability": round(float(v), 6)}
                for v, i in zip(values, indices, strict=True)
            ],
        }

    def classify_files(
        self, paths: Sequence[str], top_k: int = 1, pipeline: str = DEFAULT_PIPELINE
    ) -> list[dict[str, Any]]:
        """One result per path, in order; a bad file gets an `error` entry, others go on."""
        results: list[dict[str, Any]] = [{} for _ in paths]
        good: list[tuple[int, torch.Tensor]] = []
        for i, path in enumerate(paths):
            try:
                good.append((i, preprocess(load_image(path), pipeline).pixels))
            except DigitlabError as e:
                results[i] = {"path": str(path), "error": str(e)}
        if good:
            probabilities = self.predict(torch.stack([p for _, p in good]))
            for (i, _), probs in zip(good, probabilities, strict=True):
                results[i] = self.describe(str(paths[i]), probs, top_k)
        return results


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
