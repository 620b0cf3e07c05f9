"""Where the ink is: any photo or drawing → an ink-bright float map (polarity, lighting, specks,
and edges running into the frame dealt with), and the measures it is judged by.

`reading.robust.centring` crops, scales and centres one digit of it; `reading.segment` splits
numbers with it; `reading.plain` borrows its paper plane and Otsu.
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
    dilate,
    histogram,
    ink_box,
    otsu,
    quantile,
    shrink,
    stroke_width,
)
from digitlab.reading.robust.border_lines import find_border_lines
from digitlab.reading.robust.lighting import estimate_paper

WORK_SIZE = 768  # longest side we analyse at: 8 digits in a row still get ~90 px each
FLOAT_PIXELS = 1_000_000  # images up to this size are shrunk in floating point
SPECK_FRACTION = 0.02  # components smaller than this share of the largest are specks
MIN_CONTRAST = 0.08
MIN_INK_PIXELS, MAX_INK_FRACTION = 10, 0.5
MIN_EXTENT = 0.03  # the ink must span this share of the image's longer side (a hairline 1 does)
MIN_ELONGATION, SMALL_INK_FRACTION = 2.5, 0.02  # a digit is longer than 2.5 stroke widths
MIN_COHERENCE = 0.25  # iid noise scores 1/9, a 1-px line 1/3 (see _coherence)
EDGE_RIM = 0.01  # an edge's or shade's soft rim: this share of the picture's longer side
POLARITY_PHOTO = 64  # pictures at least this big may be photos half in shadow ...
POLARITY_SIZE, CLEARLY = 48, 1.5  # ... their ink found on this small a copy, this much clearer


def ink_map(
    image: Image.Image, work_size: int = WORK_SIZE, lighting: str = "opening"
) -> tuple[np.ndarray, dict[str, Any]]:
    """Ink-bright floats in [0, 1] at working resolution (≤ work_size), plus what was found.

    The info dict: size, work_scale (working / original pixels), inverted, paper_range and
    paper_step (how much the paper's level varies, and its largest jump between neighbouring
    pixels of the small copy it is estimated on), threshold, contrast, has_ink and, when there
    is none, reason. `lighting` says how the paper's level is estimated (see estimate_paper).
    """
    gray, work_scale = _working_gray(image, work_size)
    inverted = _is_dark_on_light(gray)
    ink = 1.0 - gray if inverted else gray
    level, paper = estimate_paper(ink, lighting)
    flat = np.maximum(ink - level, np.float32(0), dtype=np.float32)
    mask, levels = _threshold(flat)
    mask = _drop_specks(mask)
    lines, edges = find_border_lines(mask, flat)
    if edges:  # a sheet's, table's or shadow's edge is not a stroke (reading.robust.border_lines)
        # Gone with its rim, and the threshold found again without it: bright shade had set it.
        reach = max(2, round(EDGE_RIM * max(flat.shape)))
        flat[ndimage.binary_dilation(lines, EIGHT, iterations=reach)] = 0
        mask, levels = _threshold(flat)
        mask = _drop_specks(mask)
        more, again = find_border_lines(mask, flat)
        if again:
            mask, edges = _drop_specks(mask & ~more), edges + again
    reason = why_no_ink(mask, levels["contrast"])
    info: dict[str, Any] = {
        "size": list(image.size), "work_scale": work_scale, "inverted": inverted, **paper,
        "threshold": round(levels["threshold"], 4), "contrast": round(levels["contrast"], 4),
        "has_ink": not reason, **({"edges_removed": edges} if edges else {}),
    }
    if reason:
        info["reason"] = reason
        return np.zeros_like(flat), info
    low = levels["median"]
    high = quantile(histogram(flat[mask], levels["top"]), 0.9) * levels["top"] / (BINS - 1)
    # Keep the anti-aliased rim around the mask, zero everything else (texture, specks).
    near = dilate(mask)
    scaled = (flat - np.float32(low)) * np.float32(1 / max(high - low, 1e-6))
    np.minimum(scaled, 1, out=scaled)
    np.maximum(scaled, 0, out=scaled)
    scaled[~near] = 0
    return scaled, info


def to_original(box: list[int], info: dict[str, Any]) -> list[int]:
    """A working-resolution box in the original image's pixels (rounded outwards, clipped)."""
    s, (w, h) = info["work_scale"], info["size"]
    return [max(0, math.floor(box[0] / s)), max(0, math.floor(box[1] / s)),
            min(w, math.ceil(box[2] / s)), min(h, math.ceil(box[3] / s))]


def _working_gray(image: Image.Image, work_size: int) -> tuple[np.ndarray, float]:
    """Grayscale at ≤ work_size; big 8-bit images are shrunk by PIL first, far cheaper than floats.

    Small ones are shrunk as floats: 8-bit results are rounded, and rounding is not symmetric
    under inversion, so light-on-dark and dark-on-light would not give the same digit.
    """
    factor = work_size / max(image.size)
    if image.width * image.height <= FLOAT_PIXELS:
        return shrink(to_grayscale(image), factor)
    if factor < 1 and image.mode in ("1", "P", "PA"):
        image = image.convert("RGBA" if "A" in image.mode or "transparency" in image.info else "L")
    if factor < 1 and image.mode in ("L", "RGB", "RGBA", "LA", "CMYK"):
        size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
        return to_grayscale(image.resize(size, Image.Resampling.BOX)), size[0] / image.width
    return shrink(to_grayscale(image), factor)


def _is_dark_on_light(gray: np.ndarray) -> bool:
    """Paper is the majority: a light median means dark ink; mid-grey, the longer tail is ink.

    A dark median can also be paper half in shadow (or a dark table around a sheet): in a
    photo, dark ink is still taken when thin dark strokes clearly stand out from their
    surroundings and light ones do not (`_thin_contrasts`).
    """
    hist = histogram(gray, 1.0)
    background = quantile(hist, 0.5) / (BINS - 1)
    if abs(background - 0.5) > 0.15:
        if background > 0.5 or min(gray.shape) < POLARITY_PHOTO:
            return background > 0.5
        dark, light = _thin_contrasts(gray)
        return dark >= MIN_CONTRAST and dark >= CLEARLY * light
    low, high = quantile(hist, 0.005) / (BINS - 1), quantile(hist, 0.995) / (BINS - 1)
    return background - low > high - background


def _thin_contrasts(gray: np.ndarray) -> tuple[float, float]:
    """How far the darkest and the lightest 0.5% stand out from a local median, on a small copy.

    A median over a window much wider than a stroke follows the paper, steps in its level
    included (unlike a mean or an opening), whichever way the ink goes.
    """
    small, _ = shrink(gray, min(1.0, POLARITY_SIZE / min(gray.shape)))
    k = max(3, min(small.shape) // 4)
    residual = small - ndimage.median_filter(small, size=(k, k))
    low, high = np.percentile(residual, [0.5, 99.5])
    return float(-low), float(high)


def _threshold(flat: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """Otsu, but never inside the noise and never above half the ink's contrast."""
    top = float(flat.max())
    hist = histogram(flat, top)
    unit = top / (BINS - 1)
    median = quantile(hist, 0.5)
    deviation = np.bincount(np.abs(np.arange(BINS) - median), weights=hist, minlength=BINS)
    noise = 1.4826 * quantile(deviation, 0.5) * unit
    # The ink's level: the 50th-brightest pixel (at most the top 0.05%), so a hairline
    # digit on a big page still counts while a few hot pixels do not.
    contrast = (quantile(hist, 1 - min(5e-4, 50 / flat.size)) - median) * unit
    threshold = min(max(otsu(hist) * unit, median * unit + 3 * noise),
                    median * unit + 0.5 * contrast)
    levels = {"threshold": threshold, "contrast": contrast, "median": median * unit, "top": top}
    return flat > threshold, levels


def _drop_specks(mask: np.ndarray) -> np.ndarray:
    box = ink_box(mask, level=0)
    if box is None:
        return mask
    window = (slice(box[1], box[3]), slice(box[0], box[2]))  # labelling only where ink is
    labels, count = ndimage.label(mask[window], structure=EIGHT)
    areas = np.bincount(labels.ravel())
    areas[0] = 0
    keep = areas >= max(2.0, SPECK_FRACTION * areas.max())
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
    y0, x0 = max(box[1] - 1, 0), max(box[0] - 1, 0)
    window = mask[y0 : box[3] + 1, x0 : box[2] + 1].astype(np.float32)
    smooth = ndimage.uniform_filter(window, size=3, mode="constant")
    inside = float(((smooth - p) ** 2).sum())
    outside = (mask.size - window.size) * p * p
    return (inside + outside) / mask.size / (p * (1 - p))


def why_no_ink(mask: np.ndarray, contrast: float) -> str | None:
    area = int(mask.sum())
    if contrast < MIN_CONTRAST:
        return "contrast too low"
    box = ink_box(mask)
    if area < MIN_INK_PIXELS or box is None or (
        max(box[2] - box[0], box[3] - box[1]) < MIN_EXTENT * max(mask.shape)
    ):
        return "too little ink"
    if area > MAX_INK_FRACTION * mask.size:
        return "ink covers most of the image"
    if _coherence(mask, box) < MIN_COHERENCE:
        return "no strokes, only noise"
    if area < SMALL_INK_FRACTION * mask.size:  # only small ink can be a lone dot; skip the EDT
        blob = mask[box[1] : box[3], box[0] : box[2]]
        if max(blob.shape) < MIN_ELONGATION * stroke_width(blob):
            return "only a dot, no strokes"
    return None
