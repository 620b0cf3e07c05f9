"""Where the ink is: any photo or drawing → an ink-bright float map (polarity, lighting, specks,
and edges running into the frame dealt with), and the measures it is judged by.

`reading.robust.centring` crops, scales and centres one digit of it; `reading.segment` splits
numbers with it; `reading.robust.views` judges the plain recipe's ink by `why_no_ink`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from digitlab.reading.images import to_grayscale
from digitlab.reading.measures import (
    BINS,
    EIGHT,
    box_side,
    crop,
    dilate,
    histogram,
    ink_box,
    ink_is_dark,
    otsu,
    quantile,
    shrink,
    stroke_width,
)
from digitlab.reading.parameters import CLEANING, DECIMALS, EPSILON, INK
from digitlab.reading.robust.border_lines import find_border_lines
from digitlab.reading.robust.lighting import estimate_paper


def ink_map(
    image: Image.Image, work_size: int | None = None, lighting: str = "opening",
    gray: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Ink-bright floats in [0, 1] at working resolution (≤ work_size, default INK.work_size),
    plus what was found.

    The info dict: size, work_scale (working / original pixels), inverted, paper_range and
    paper_step (how much the paper's level varies, and its largest jump between neighbouring
    pixels of the small copy it is estimated on), threshold, contrast, has_ink and, when there
    is none, reason. `lighting` says how the paper's level is estimated (see estimate_paper).
    `gray`: the picture's `to_grayscale`, where the caller has it already (never changed here).
    """
    small, work_scale = _working_gray(image, work_size or INK.work_size, gray)
    inverted = ink_is_dark(small)
    ink = 1 - small if inverted else small
    level, paper = estimate_paper(ink, lighting)
    flat = np.maximum(ink - level, np.float32(0), dtype=np.float32)
    mask, levels, edges = _clean_mask(flat)
    reason = why_no_ink(mask, levels["contrast"])
    info: dict[str, Any] = {
        "size": list(image.size), "work_scale": work_scale, "inverted": inverted, **paper,
        "threshold": round(levels["threshold"], DECIMALS),
        "contrast": round(levels["contrast"], DECIMALS),
        "has_ink": not reason, **({"edges_removed": edges} if edges else {}),
    }
    if reason:
        info["reason"] = reason
        return np.zeros_like(flat), info
    return _stretch(flat, mask, levels), info


def _clean_mask(flat: np.ndarray) -> tuple[np.ndarray, dict[str, float], int]:
    """The thresholded ink without specks, nor edges and shade running into the frame (and how
    many of those were taken out): a sheet's, table's or shadow's edge is not a stroke."""
    mask, levels = _threshold(flat)
    mask = _drop_specks(mask)
    lines, edges = find_border_lines(mask, flat)
    if edges:
        # Gone with its rim, and the threshold found again without it: bright shade had set it.
        reach = max(2, round(CLEANING.edge_rim * max(flat.shape)))
        flat[ndimage.binary_dilation(lines, EIGHT, iterations=reach)] = 0
        mask, levels = _threshold(flat)
        mask = _drop_specks(mask)
        more, again = find_border_lines(mask, flat)
        if again:
            mask, edges = _drop_specks(mask & ~more), edges + again
    return mask, levels, edges


def _stretch(flat: np.ndarray, mask: np.ndarray, levels: dict[str, float]) -> np.ndarray:
    """The ink from the paper's median (0) to its full strength (1); the anti-aliased rim
    around the mask kept, everything else (texture, specks) zeroed."""
    low = levels["median"]
    high = quantile(histogram(flat[mask], levels["top"]), INK.full_ink) * levels["top"] / (BINS - 1)
    near = dilate(mask)
    scaled = (flat - np.float32(low)) * np.float32(1 / max(high - low, EPSILON))
    np.minimum(scaled, 1, out=scaled)
    np.maximum(scaled, 0, out=scaled)
    scaled[~near] = 0
    return scaled


def to_original(box: list[int], info: dict[str, Any]) -> list[int]:
    """A working-resolution box in the original image's pixels (rounded outwards, clipped)."""
    s, (w, h) = info["work_scale"], info["size"]
    x0, y0, x1, y1 = box
    return [max(0, math.floor(x0 / s)), max(0, math.floor(y0 / s)),
            min(w, math.ceil(x1 / s)), min(h, math.ceil(y1 / s))]


def _working_gray(image: Image.Image, work_size: int,
                  gray: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Grayscale at ≤ work_size; big 8-bit images are shrunk by PIL first, far cheaper than floats.

    Small ones are shrunk as floats (from `gray`, their to_grayscale, when given): 8-bit results
    are rounded, and rounding is not symmetric under inversion, so light-on-dark and
    dark-on-light would not give the same digit.
    """
    factor = work_size / max(image.size)
    if image.width * image.height <= INK.float_pixels:
        return shrink(to_grayscale(image) if gray is None else gray, factor)
    if factor < 1 and image.mode in ("1", "P", "PA"):
        image = image.convert("RGBA" if "A" in image.mode or "transparency" in image.info else "L")
    if factor < 1 and image.mode in ("L", "RGB", "RGBA", "LA", "CMYK"):
        size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
        return to_grayscale(image.resize(size, Image.Resampling.BOX)), size[0] / image.width
    return shrink(to_grayscale(image), factor)


def _threshold(flat: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """Otsu, but never inside the noise and never above half the ink's contrast."""
    top = float(flat.max())
    hist = histogram(flat, top)
    unit = top / (BINS - 1)
    median = quantile(hist, 0.5)
    deviation = np.bincount(np.abs(np.arange(BINS) - median), weights=hist, minlength=BINS)
    noise = INK.mad_to_sigma * quantile(deviation, 0.5) * unit
    contrast = (quantile(hist, 1 - min(INK.top_share, INK.top_pixels / flat.size)) - median) * unit
    threshold = min(max(otsu(hist) * unit, median * unit + INK.noise_sigmas * noise),
                    median * unit + 0.5 * contrast)
    levels = {"threshold": threshold, "contrast": contrast, "median": median * unit, "top": top}
    return flat > threshold, levels


def _drop_specks(mask: np.ndarray) -> np.ndarray:
    """The mask without components much smaller than its largest one."""
    box = ink_box(mask, level=0)
    if box is None:
        return mask
    x0, y0, x1, y1 = box
    window = (slice(y0, y1), slice(x0, x1))  # labelling only where ink is
    labels, count = ndimage.label(mask[window], structure=EIGHT)
    areas = np.bincount(labels.ravel())
    areas[0] = 0
    keep = areas >= max(CLEANING.min_speck, CLEANING.speck_share * areas.max())
    keep[0] = False
    out = np.zeros_like(mask)
    out[window] = keep[labels]
    return out


def _coherence(mask: np.ndarray, box: list[int] | None) -> float:
    """Variance left after a 3×3 mean over the mask's variance: 1/9 for iid noise, ≥1/3 for lines.

    `box` is the mask's `ink_box`.
    """
    p = float(np.count_nonzero(mask)) / mask.size
    if box is None or p == 1.0:
        return 0.0
    # The 3×3 mean is zero more than a pixel away from the ink, so filter only the ink's box
    # grown by that pixel (beyond it the filter's zero padding is the truth) and count every
    # pixel outside as (0 - p)².
    x0, y0, x1, y1 = box
    window = mask[max(y0 - 1, 0) : y1 + 1, max(x0 - 1, 0) : x1 + 1].astype(np.float32)
    smooth = ndimage.uniform_filter(window, size=INK.coherence_window, mode="constant")
    inside = float(((smooth - p) ** 2).sum())
    outside = (mask.size - window.size) * p * p
    return (inside + outside) / mask.size / (p * (1 - p))


def why_no_ink(mask: np.ndarray, contrast: float) -> str | None:
    """Why `mask` (with this contrast) is not a digit's ink, or None when it may be."""
    area = int(mask.sum())
    if contrast < INK.min_contrast:
        return "contrast too low"
    box = ink_box(mask)
    if area < INK.min_ink_pixels or box is None or box_side(box) < INK.min_extent * max(mask.shape):
        return "too little ink"
    if area > INK.max_ink_share * mask.size:
        return "ink covers most of the image"
    if _coherence(mask, box) < INK.min_coherence:
        return "no strokes, only noise"
    if area < INK.small_ink_share * mask.size:  # only small ink can be a lone dot; skip the EDT
        blob = crop(mask, box)
        if max(blob.shape) < INK.min_elongation * stroke_width(blob):
            return "only a dot, no strokes"
    return None
