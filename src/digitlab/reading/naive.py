"""The tutorial's way: grayscale, squash to 28×28, assume white ink on black."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from digitlab.reading.canvas import CANVAS, Prepared


def preprocess_naive(image: Image.Image) -> Prepared:
    """The tutorial's way: grayscale, squash to 28×28, assume white ink on black."""
    gray = image.convert("L").resize((CANVAS, CANVAS), Image.Resampling.BILINEAR)
    pixels = torch.from_numpy(np.asarray(gray, dtype=np.float32) / 255.0)
    return Prepared(pixels=pixels, steps={"pipeline": "naive", "size": list(image.size)})
