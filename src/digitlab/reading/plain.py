"""The plain MNIST recipe, as a 20-line tutorial would write it: the baseline robust must beat.

Grayscale; invert when the border is light; Otsu threshold; crop to the ink; scale the longer
side to 20 px (area averaging); paste into 28×28 with the centre of mass at the middle. No
lighting correction, no speck removal, no stroke thickening: what it gets right, it gets right
by doing almost nothing, which is why `robust` falls back on it (see reading.robust.views).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from digitlab.reading.canvas import CANVAS, CENTRE, DIGIT_SIZE, Prepared
from digitlab.reading.images import to_grayscale
from digitlab.reading.measures import otsu
from digitlab.reading.robust.find_ink import MIN_CONTRAST
from digitlab.reading.robust.lighting import paper_plane

BORDER = 0.05  # the outer 5% of each side says what the paper looks like


def plain_ink(gray: np.ndarray, level_light: bool = False) -> tuple[np.ndarray, dict]:
    """Ink-bright floats (paper 0) above an Otsu threshold, and what was found.

    With `level_light`, a plane fitted to the paper is taken off first (uneven light on a
    digit that fills its frame; `reading.robust.views` uses this as one of robust's views).
    """
    h, w = gray.shape
    band = max(1, round(BORDER * min(h, w)))
    border = np.concatenate([gray[:band].ravel(), gray[-band:].ravel(),
                             gray[:, :band].ravel(), gray[:, -band:].ravel()])
    paper = float(np.median(border))
    inverted = paper > 0.5
    ink = np.clip(paper - gray if inverted else gray - paper, 0, 1).astype(np.float32)
    if level_light:
        ink = np.clip(ink - paper_plane(ink), 0, 1).astype(np.float32)
    top = float(ink.max(initial=0.0))
    info = {"inverted": inverted, "contrast": round(top, 4)}
    if top < MIN_CONTRAST:  # robust's least contrast: less between paper and ink is nothing
        return np.zeros_like(ink), {**info, "has_ink": False, "reason": "contrast too low"}
    threshold = otsu_level(ink)
    info["threshold"] = round(threshold, 4)
    return np.where(ink > threshold, ink, 0).astype(np.float32), {**info, "has_ink": True}


def otsu_level(values: np.ndarray, bins: int = 256) -> float:
    """The level that best splits `values` in two (reading.measures.otsu on a `bins`-bin histogram)."""
    hist, edges = np.histogram(values, bins=bins, range=(0.0, float(values.max()) + 1e-6))
    return float(edges[1 + otsu(hist)])


def fit_to_mnist(crop: np.ndarray) -> np.ndarray:
    """A cropped ink map → 28×28: longer side 20 px (area averaging), mass at (14, 14)."""
    h, w = crop.shape
    scale = DIGIT_SIZE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    small = np.asarray(Image.fromarray(crop.astype(np.float32)).resize(size, resample))
    out = np.zeros((CANVAS, CANVAS), np.float32)
    top, left = (CANVAS - small.shape[0]) // 2, (CANVAS - small.shape[1]) // 2
    out[top : top + small.shape[0], left : left + small.shape[1]] = small
    if out.sum() > 0:
        cy, cx = ndimage.center_of_mass(out)
        out = ndimage.shift(out, (round(CENTRE - 0.5 - cy), round(CENTRE - 0.5 - cx)), order=0)
    return out / max(float(out.max()), 1e-6)


def preprocess_plain(image: Image.Image, level_light: bool = False) -> Prepared:
    """Invert if the border is light, Otsu, crop, longer side 20 px, centre by mass."""
    ink, info = plain_ink(to_grayscale(image), level_light)
    steps = {"pipeline": "plain", "size": list(image.size), **info}
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if not info["has_ink"] or rows.size == 0:
        steps.update(has_ink=False, reason=info.get("reason", "no ink"))
        return Prepared(torch.zeros(CANVAS, CANVAS), steps, has_ink=False)
    box = [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1]
    steps["ink_box"] = box
    pixels = fit_to_mnist(ink[box[1] : box[3], box[0] : box[2]])
    return Prepared(torch.from_numpy(pixels), steps)
