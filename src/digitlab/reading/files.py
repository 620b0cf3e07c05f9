"""`classify`'s inputs: files, folders and globs → images → one reading (or error) per file."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from digitlab.errors import DigitlabError
from digitlab.reading.images import IMAGE_SUFFIXES, load_image
from digitlab.reading.predictor import MIN_CONFIDENCE, Predictor
from digitlab.reading.results import DigitReading, NumberReading


@dataclass(frozen=True)
class FileReading:
    """One input file: what was read in it, or why it could not be read."""

    path: str
    reading: DigitReading | NumberReading | None = None
    error: str | None = None
    image: Image.Image | None = field(default=None, repr=False, compare=False)  # for pictures

    def to_dict(self) -> dict[str, Any]:
        """{"path", ...the reading's JSON} or {"path", "error"}."""
        if self.reading is None:
            return {"path": self.path, "error": self.error}
        return {"path": self.path, **self.reading.to_dict()}


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
) -> list[FileReading]:
    """One result per path, in order; single digits are classified as one batch."""
    images = load_images(paths)
    good = {i: image for i, image in enumerate(images) if isinstance(image, Image.Image)}
    readings: dict[int, DigitReading | NumberReading]
    if number:
        readings = {i: predictor.read_number(image, min_confidence, top_k=top_k) for i, image in good.items()}
    else:
        batch = predictor.read_digits(list(good.values()), pipeline, min_confidence, top_k=top_k)
        readings = dict(zip(good, batch, strict=True))
    return [
        FileReading(str(path), readings[i], image=good[i]) if i in good
        else FileReading(str(path), error=str(images[i]))
        for i, path in enumerate(paths)
    ]
