"""Crop, thicken, scale and centre: one robust view of a picture, made the way MNIST was made.

`robust_view` finds the ink with one lighting correction (`reading.robust.find_ink`) and crops,
scales and centres it; `normalise_digit` does the same for one digit of an ink map
(`reading.segment` uses it for numbers); `as_mnist` takes a picture already in MNIST's format as
it is. Which views the robust pipeline shows the model is decided in `reading.robust.views`.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from digitlab.errors import ConfigError
from digitlab.reading.canvas import CANVAS, CENTRE, DIGIT_SIZE, Prepared
from digitlab.reading.images import to_grayscale
from digitlab.reading.measures import erode, ink_box, resize, shrink, stroke_width
from digitlab.reading.robust.find_ink import ink_map, to_original
from digitlab.reading.robust.lighting import LIGHTINGS

logger = logging.getLogger(__name__)

QUICK_SIZE = 128  # a first look at this size is enough for a digit at least QUICK_DIGIT px
QUICK_DIGIT, QUICK_STROKE = 56, 3.0  # tall there, drawn in strokes at least QUICK_STROKE wide
MIN_STROKE = TARGET_STROKE = 2.5  # output pixels (MNIST: median 2.56); thinner is grown to it
MNIST_BOX, MNIST_OFF_CENTRE = (19, 20, 21), 1.0  # an MNIST digit's ink box, its mass's offset (px)
MID_SIZE = 4 * DIGIT_SIZE  # digits are measured and thickened at this size, then averaged down


def robust_view(image: Image.Image, lighting: str) -> Prepared:
    """One robust view: ink_map with this lighting correction (reading.robust.lighting.LIGHTINGS),
    cropped, scaled and centred."""
    if lighting not in LIGHTINGS:
        raise ConfigError(f"unknown lighting {lighting!r}; choose from {', '.join(LIGHTINGS)}")
    ink, info = _quick_look(image, lighting) if max(image.size) > QUICK_SIZE else (None, {})
    if ink is None:
        ink, info = ink_map(image, lighting=lighting)
    steps: dict[str, Any] = {"pipeline": "robust", "lighting": lighting, **info, "ink_box": None,
                             "scale": None}
    if not info["has_ink"]:
        return Prepared(torch.zeros(CANVAS, CANVAS), steps, has_ink=False)
    box = ink_box(ink)
    assert box is not None  # has_ink guarantees some ink
    pixels, details = _normalise(ink[box[1] : box[3], box[0] : box[2]])
    steps.update(details, ink_box=to_original(box, info), scale=details["scale"] * info["work_scale"])
    return Prepared(pixels, steps)


def as_mnist(image: Image.Image) -> Prepared | None:
    """The picture as it is, when it is already in MNIST's format; else None.

    MNIST's format: 28×28, light ink on black, the digit scaled into a 20-px box and centred
    by mass, nothing on the outermost pixels (99% of MNIST, and every picture this module
    makes). Normalising such a picture again would only resample it, at ~1 ms a picture (on
    the 10,000 MNIST test digits as PNG files, classify reads 99.50% right either way).
    """
    if image.size != (CANVAS, CANVAS):
        return None
    gray = to_grayscale(image)
    top = float(gray.max())
    if top < 0.5 or gray[0].any() or gray[-1].any() or gray[:, 0].any() or gray[:, -1].any():
        return None
    box = ink_box(gray, level=0)
    assert box is not None  # top >= 0.5
    if max(box[2] - box[0], box[3] - box[1]) not in MNIST_BOX:
        return None
    com_y, com_x = ndimage.center_of_mass(gray)
    if max(abs(com_y + 0.5 - CENTRE), abs(com_x + 0.5 - CENTRE)) > MNIST_OFF_CENTRE:
        return None
    steps = {"pipeline": "robust", "size": [CANVAS, CANVAS], "has_ink": True, "inverted": False,
             "as_is": "already in MNIST's format (28×28, light on dark, 20-px digit centred by mass)",
             "ink_box": box, "scale": 1.0}
    return Prepared(torch.from_numpy(gray / top), steps)


def _quick_look(image: Image.Image, lighting: str) -> tuple[np.ndarray | None, dict[str, Any]]:
    """ink_map at QUICK_SIZE, or None when its digit is too small or its strokes too thin."""
    ink, info = ink_map(image, QUICK_SIZE, lighting)
    box = ink_box(ink) if info["has_ink"] else None
    if box is None or max(box[2] - box[0], box[3] - box[1]) < QUICK_DIGIT:
        return None, info
    mask = ink > 0.5
    edge = mask & ~erode(mask)
    # A stroke w wide and L long has area wL and about 2L edge pixels.
    if 2 * np.count_nonzero(mask) < QUICK_STROKE * np.count_nonzero(edge):
        return None, info
    return ink, info


def normalise_digit(ink: np.ndarray) -> torch.Tensor:
    """One digit's ink-bright map → 28×28: cropped, thickened if thin, 20 px, mass-centred."""
    box = ink_box(ink)
    if box is None:
        return torch.zeros(CANVAS, CANVAS)
    return _normalise(ink[box[1] : box[3], box[0] : box[2]])[0]


def _normalise(crop: np.ndarray) -> tuple[torch.Tensor, dict[str, Any]]:
    """A tightly cropped digit → 28×28 tensor, and the stroke width, thickening and scale used."""
    # Rounded: 1 - x and x differ by float noise, and anti-aliased edges sit exactly at the
    # 0.5 the stroke width is measured at, so noise would decide between ink and paper there.
    crop = np.round(crop / max(float(crop.max()), 1e-6), 5)
    mid, factor = shrink(crop, MID_SIZE / max(crop.shape))
    # Max-pool-like footprint: every mid pixel a stroke touches, so thin lines stay connected.
    touched = resize((crop > 0.5).astype(np.float32), mid.shape) > 0.05
    mid, width, grow = _thicken(mid / max(float(mid.max()), 1e-6), touched)
    scale = DIGIT_SIZE / max(mid.shape)
    out = _place(mid, scale)
    details = {"stroke_width": round(width * scale, 2), "thickened_by": round(grow / factor, 2),
               "scale": scale * factor}
    return torch.from_numpy(out), details


def _place(mid: np.ndarray, scale: float) -> np.ndarray:
    """Resample by `scale` straight into the 28×28 field with the mass at (14, 14), sub-pixel.

    Integer shifts (as MNIST did) move thin strokes by up to half a pixel, so the same
    digit drawn twice would not line up; resampling at the fractional offset does.
    """
    h, w = mid.shape
    rows, cols = max(1, round(h * scale)), max(1, round(w * scale))
    sy, sx = rows / h, cols / w
    com_y, com_x = ndimage.center_of_mass(mid)
    top, left = CENTRE - ((com_y + 0.5) * sy - 0.5), CENTRE - ((com_x + 0.5) * sx - 0.5)
    fy, fx = top - math.floor(top), left - math.floor(left)
    py, px = math.ceil(1 / sy) + 1, math.ceil(1 / sx) + 1  # PIL's box must stay inside
    box = (px - fx / sx, py - fy / sy, px + (cols + 1 - fx) / sx, py + (rows + 1 - fy) / sy)
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    padded = Image.fromarray(np.pad(mid, ((py, py), (px, px))).astype(np.float32))
    digit = np.clip(np.asarray(padded.resize((cols + 1, rows + 1), resample, box=box)), 0, None)
    out = np.zeros((CANVAS, CANVAS), np.float32)
    t, le = math.floor(top), math.floor(left)
    y0, x0, y1, x1 = max(t, 0), max(le, 0), min(t + rows + 1, CANVAS), min(le + cols + 1, CANVAS)
    out[y0:y1, x0:x1] = digit[y0 - t : y1 - t, x0 - le : x1 - le]
    return out / max(float(out.max()), 1e-6)


def _thicken(mid: np.ndarray, touched: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Dilate strokes that would end up thinner than MNIST's (a fine pen on a big photo)."""
    width = stroke_width(mid > 0.5)
    longest = max(mid.shape)
    if width * DIGIT_SIZE / longest >= MIN_STROKE:
        return mid, width, 0.0
    # Grow by r so that (width + 2r) · 20 / (longest + 2r) reaches TARGET_STROKE.
    ratio = TARGET_STROKE / DIGIT_SIZE
    grow = (ratio * longest - width) / (2 * (1 - ratio))
    pad = math.ceil(grow) + 1
    distance = ndimage.distance_transform_edt(~np.pad(touched, pad))
    grown = np.maximum(np.pad(mid, pad), np.clip(grow + 0.5 - distance, 0, 1)).astype(np.float32)
    box = ink_box(grown)
    assert box is not None
    return grown[box[1] : box[3], box[0] : box[2]], width + 2 * grow, grow
