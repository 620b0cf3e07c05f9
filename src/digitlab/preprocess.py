"""User image → the 28×28 tensor a model sees. One named pipeline, swapped in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from digitlab.errors import ImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclass
class Prepared:
    """The model's input (28×28 floats in [0, 1], ink bright) and what was done to get it."""

    pixels: torch.Tensor
    steps: dict[str, Any] = field(default_factory=dict)


def load_image(path: str | os.PathLike[str]) -> Image.Image:
    """Open an image file fully, or raise ImageError saying why it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{path}: not a readable image ({e})") from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"{path}: image too large ({e})") from None


def preprocess_naive(image: Image.Image) -> Prepared:
    """The tutorial's way: grayscale, squash to 28×28, assume white ink on black."""
    gray = image.convert("L").resize((28, 28), Image.Resampling.BILINEAR)
    pixels = torch.from_numpy(np.asarray(gray, dtype=np.float32) / 255.0)
    return Prepared(pixels=pixels, steps={"pipeline": "naive", "size": list(image.size)})


PIPELINES = {"naive": preprocess_naive}
DEFAULT_PIPELINE = "naive"


def preprocess(image: Image.Image, pipeline: str = DEFAULT_PIPELINE) -> Prepared:
    """Run the named preprocessing pipeline on `image`."""
    return PIPELINES[pipeline](image)
