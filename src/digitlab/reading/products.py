"""A photo of one object → 28×28 the way Fashion-MNIST was made from Zalando's product photos.

Fashion-MNIST's recipe: trim the background, resize the longest edge to 28, put the object in
the middle of a 28×28 field, negate (object bright, background black), grayscale. Nothing here
looks for strokes: a sneaker has no centre of mass to align like a digit's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image

from digitlab.reading.canvas import CANVAS, Prepared
from digitlab.reading.images import to_grayscale

BORDER = 0.04  # the outer 4% of each side is taken as background
MIN_CONTRAST = 0.06  # an object differs from the background by at least this much somewhere
TRIM_LEVEL = 0.1  # share of the object's contrast above which a pixel is object, for trimming


def background_level(gray: np.ndarray) -> float:
    """Median of the image's border: the backdrop a product photo is taken against."""
    h, w = gray.shape
    band = max(1, round(BORDER * min(h, w)))
    border = np.concatenate([gray[:band].ravel(), gray[-band:].ravel(),
                             gray[:, :band].ravel(), gray[:, -band:].ravel()])
    return float(np.median(border))


def preprocess_product(image: Image.Image) -> Prepared:
    """Object bright on black, trimmed, longest edge 28 px, centred in 28×28."""
    gray = to_grayscale(image)
    level = background_level(gray)
    dark_background = level < 0.5
    # Measured from the backdrop, so a grey studio backdrop goes black as Zalando's white did.
    object_map = np.clip(gray - level, 0, 1) if dark_background else np.clip(level - gray, 0, 1)
    contrast = float(object_map.max(initial=0.0))
    steps: dict[str, Any] = {
        "pipeline": "product", "size": list(image.size), "background": round(level, 3),
        "inverted": not dark_background, "object_box": None,
    }
    if contrast < MIN_CONTRAST:
        steps["reason"] = "nothing stands out from the background"
        return Prepared(torch.zeros(CANVAS, CANVAS), steps, has_ink=False)
    rows = np.flatnonzero((object_map > TRIM_LEVEL * contrast).any(axis=1))
    cols = np.flatnonzero((object_map > TRIM_LEVEL * contrast).any(axis=0))
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    steps["object_box"] = [x0, y0, x1, y1]
    crop = object_map[y0:y1, x0:x1] / contrast  # stretched: the object's brightest part is white
    return Prepared(torch.from_numpy(_fit(crop)), steps)


def _fit(crop: np.ndarray) -> np.ndarray:
    """Resize so the longest edge is CANVAS, and centre in a CANVAS×CANVAS black field."""
    h, w = crop.shape
    scale = CANVAS / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resized = Image.fromarray(crop.astype(np.float32), mode="F").resize(
        size, Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC
    )
    field = np.zeros((CANVAS, CANVAS), dtype=np.float32)
    top, left = (CANVAS - size[1]) // 2, (CANVAS - size[0]) // 2
    field[top : top + size[1], left : left + size[0]] = np.asarray(resized)
    return np.clip(field, 0, 1)
