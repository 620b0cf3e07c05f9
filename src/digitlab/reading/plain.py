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

from digitlab.reading.canvas import CANVAS, CENTRE, DIGIT_SIZE, Prepared, empty_view
from digitlab.reading.images import to_grayscale
from digitlab.reading.measures import border_median, crop, ink_box, ink_is_dark, otsu, unit_peak
from digitlab.reading.parameters import DECIMALS, EPSILON, INK, PLAIN
from digitlab.reading.robust.lighting import paper_plane


def plain_ink(gray: np.ndarray, level_light: bool = False) -> tuple[np.ndarray, dict]:
    """Ink-bright floats (paper 0) above an Otsu threshold, and what was found.

    With `level_light`, a plane fitted to the paper is taken off first (uneven light on a
    digit that fills its frame; `reading.robust.views` uses this as one of robust's views).
    """
    paper = border_median(gray, PLAIN.border)
    inverted = ink_is_dark(gray, paper)
    ink = np.clip(paper - gray if inverted else gray - paper, 0, 1).astype(np.float32)
    if level_light:
        ink = np.clip(ink - paper_plane(ink), 0, 1).astype(np.float32)
    top = float(ink.max(initial=0.0))
    info = {"inverted": inverted, "contrast": round(top, DECIMALS)}
    if top < INK.min_contrast:  # robust's least contrast: less between paper and ink is nothing
        return np.zeros_like(ink), {**info, "has_ink": False, "reason": "contrast too low"}
    threshold = otsu_level(ink)
    info["threshold"] = round(threshold, DECIMALS)
    return np.where(ink > threshold, ink, 0).astype(np.float32), {**info, "has_ink": True}


def otsu_level(values: np.ndarray, bins: int = PLAIN.otsu_bins) -> float:
    """The level that best splits `values` in two (reading.measures.otsu on a `bins`-bin histogram)."""
    hist, edges = np.histogram(values, bins=bins, range=(0, float(values.max()) + EPSILON))
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
    return unit_peak(out)


def preprocess_plain(image: Image.Image, level_light: bool = False,
                     gray: np.ndarray | None = None) -> Prepared:
    """Invert if the border is light, Otsu, crop, longer side 20 px, centre by mass (`gray`:
    the picture's to_grayscale, where the caller has it)."""
    ink, info = plain_ink(to_grayscale(image) if gray is None else gray, level_light)
    steps = {"pipeline": "plain", "size": list(image.size), **info}
    box = ink_box(ink, level=0)
    if not info["has_ink"] or box is None:
        steps.update(has_ink=False, reason=info.get("reason", "no ink"))
        return empty_view(steps)
    steps["ink_box"] = box
    pixels = fit_to_mnist(crop(ink, box))
    return Prepared(torch.from_numpy(pixels), steps)
