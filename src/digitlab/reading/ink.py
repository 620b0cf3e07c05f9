"""Where the ink is: any photo or drawing → an ink-bright float map (polarity, lighting, specks,
and edges running into the frame dealt with), and the measures it is judged by.

`reading.preprocess` crops, scales and centres one digit of it; `reading.segment` splits
numbers with it; `reading.plain` borrows its paper plane and Otsu.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from digitlab.reading.border_lines import find_border_lines
from digitlab.reading.images import to_grayscale

WORK_SIZE = 768  # longest side we analyse at: 8 digits in a row still get ~90 px each
FLOAT_PIXELS = 1_000_000  # images up to this size are shrunk in floating point
BACKGROUND_SIZE = 64  # shorter side of the copy the lighting is estimated on
STEP_SIZE = 128  # ... and of the copy on which steps in the paper's level are followed
FLAT = 0.5 / 255  # paper whose estimated level varies less than this is taken as even
SPECK_FRACTION = 0.02  # components smaller than this share of the largest are specks
MIN_CONTRAST = 0.08
MIN_INK_PIXELS, MAX_INK_FRACTION = 10, 0.5
MIN_EXTENT = 0.03  # the ink must span this share of the image's longer side (a hairline 1 does)
MIN_ELONGATION, SMALL_INK_FRACTION = 2.5, 0.02  # a digit is longer than 2.5 stroke widths
MIN_COHERENCE = 0.25  # iid noise scores 1/9, a 1-px line 1/3 (see _coherence)
EIGHT = np.ones((3, 3), dtype=bool)
BINS = 1024  # histogram resolution for quantiles and Otsu
EDGE_RIM = 0.01  # an edge's or shade's soft rim: this share of the picture's longer side
POLARITY_PHOTO = 64  # pictures at least this big may be photos half in shadow ...
POLARITY_SIZE, CLEARLY = 48, 1.5  # ... their ink found on this small a copy, this much clearer
LIGHTINGS = ("opening", "steps", "plane")  # how the paper's level is estimated (see _background)


def ink_map(
    image: Image.Image, work_size: int = WORK_SIZE, lighting: str = "opening"
) -> tuple[np.ndarray, dict[str, Any]]:
    """Ink-bright floats in [0, 1] at working resolution (≤ work_size), plus what was found.

    The info dict: size, work_scale (working / original pixels), inverted, paper_range and
    paper_step (how much the paper's level varies, and its largest jump between neighbouring
    pixels of the small copy it is estimated on), threshold, contrast, has_ink and, when there
    is none, reason. `lighting` says how the paper's level is estimated (see _background).
    """
    gray, work_scale = _working_gray(image, work_size)
    inverted = _is_dark_on_light(gray)
    ink = 1.0 - gray if inverted else gray
    level, paper = _background(ink, lighting)
    flat = np.maximum(ink - level, np.float32(0), dtype=np.float32)
    mask, levels = _threshold(flat)
    mask = _drop_specks(mask)
    lines, edges = find_border_lines(mask, flat)
    if edges:  # a sheet's, table's or shadow's edge is not a stroke (reading.border_lines)
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
    high = _quantile(histogram(flat[mask], levels["top"]), 0.9) * levels["top"] / (BINS - 1)
    # Keep the anti-aliased rim around the mask, zero everything else (texture, specks).
    near = _dilate(mask)
    scaled = (flat - np.float32(low)) * np.float32(1 / max(high - low, 1e-6))
    np.minimum(scaled, 1, out=scaled)
    np.maximum(scaled, 0, out=scaled)
    scaled[~near] = 0
    return scaled, info


def ink_box(ink: np.ndarray, level: float = 1 / 255) -> list[int] | None:
    """[x0, y0, x1, y1] (x1, y1 exclusive) around values above `level`, or None."""
    rows, cols = np.flatnonzero((ink > level).any(axis=1)), np.flatnonzero((ink > level).any(axis=0))
    if rows.size == 0:
        return None
    return [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1]


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


def shrink(values: np.ndarray, factor: float) -> tuple[np.ndarray, float]:
    """Area-average down by `factor` (never up); return the array and the factor used."""
    if factor >= 1:
        return values, 1.0
    h, w = values.shape
    small = resize(values, (max(1, round(h * factor)), max(1, round(w * factor))))
    return small, small.shape[1] / w


def resize(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resample to `shape` (rows, cols): area averaging down, bilinear up."""
    down = shape[0] * shape[1] < values.size
    resample = Image.Resampling.BOX if down else Image.Resampling.BILINEAR
    image = Image.fromarray(values.astype(np.float32)).resize(shape[::-1], resample)
    return np.asarray(image, dtype=np.float32)


def histogram(values: np.ndarray, top: float) -> np.ndarray:
    """BINS-bin histogram of values in [0, top]: quantiles and Otsu without sorting."""
    index = (values * np.float32((BINS - 1) / max(top, 1e-12))).astype(np.intp).ravel()
    np.minimum(index, BINS - 1, out=index)
    np.maximum(index, 0, out=index)
    return np.bincount(index, minlength=BINS)


def _quantile(hist: np.ndarray, q: float) -> int:
    cdf = np.cumsum(hist)
    return int(np.searchsorted(cdf, q * cdf[-1]))


def _is_dark_on_light(gray: np.ndarray) -> bool:
    """Paper is the majority: a light median means dark ink; mid-grey, the longer tail is ink.

    A dark median can also be paper half in shadow (or a dark table around a sheet): in a
    photo, dark ink is still taken when thin dark strokes clearly stand out from their
    surroundings and light ones do not (`_thin_contrasts`).
    """
    hist = histogram(gray, 1.0)
    background = _quantile(hist, 0.5) / (BINS - 1)
    if abs(background - 0.5) > 0.15:
        if background > 0.5 or min(gray.shape) < POLARITY_PHOTO:
            return background > 0.5
        dark, light = _thin_contrasts(gray)
        return dark >= MIN_CONTRAST and dark >= CLEARLY * light
    low, high = _quantile(hist, 0.005) / (BINS - 1), _quantile(hist, 0.995) / (BINS - 1)
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


def _background(
    ink: np.ndarray, lighting: str = "opening"
) -> tuple[np.ndarray | np.float32, dict[str, float]]:
    """Slowly varying paper level (shadows, vignetting), estimated on a small copy.

    `opening`: a wide grey opening, wider than any stroke, so strokes are opened away.
    `steps`: that, raised by a finer opening where the paper has steps (a shadow's or a sheet's
    edge) the wide one rounds off. `plane`: a plane fitted to what a global threshold calls
    paper, for digits that fill their frame, where an opening finds no paper between strokes.
    Also returns paper_range and paper_step, measured on the small copy.
    """
    small, factor = shrink(ink, BACKGROUND_SIZE / min(ink.shape))
    if lighting == "plane":
        level = _plane_fit(small)
    else:
        k = max(3, min(small.shape) // 3)  # wider than any stroke, so strokes are opened away
        opened = ndimage.grey_opening(small, size=(k, k))
        # The mean smooths the opening's blocks, but it also rounds a step in the paper into a
        # ramp whose low side would be left as a band of ink; the opening alone keeps steps.
        level = np.maximum(ndimage.uniform_filter(opened, size=k), opened)
    low, high = float(level.min()), float(level.max())
    if high - low < FLAT:  # evenly lit (a canvas, a scan): one level does, no need to resize
        return np.float32(0.5 * (low + high)), {"paper_range": 0.0, "paper_step": 0.0}
    jump = max(float(np.abs(np.diff(level, axis=0)).max(initial=0.0)),
               float(np.abs(np.diff(level, axis=1)).max(initial=0.0)))
    paper = {"paper_range": round(high - low, 4), "paper_step": round(jump, 4)}
    level = level if factor == 1.0 else resize(level, ink.shape)
    if lighting == "steps":
        fine, fine_factor = shrink(ink, STEP_SIZE / min(ink.shape))
        k = max(3, min(fine.shape) // 6)
        opened = ndimage.grey_opening(fine, size=(k, k))
        level = np.maximum(level, opened if fine_factor == 1.0 else resize(opened, ink.shape))
    return level, paper


def paper_plane(ink: np.ndarray) -> np.ndarray:
    """The paper's level in an ink-bright map, as a plane fitted on a small copy (see _plane_fit)."""
    small, factor = shrink(ink, BACKGROUND_SIZE / min(ink.shape))
    level = _plane_fit(small)
    return level if factor == 1.0 else resize(level, ink.shape)


def _plane_fit(small: np.ndarray) -> np.ndarray:
    """A plane a + bx + cy fitted to the pixels a global Otsu threshold calls paper."""
    hist = histogram(small, 1.0)
    paper = ~_dilate(small > otsu(hist) / (BINS - 1))
    if np.count_nonzero(paper) < 10:
        return np.full_like(small, float(np.median(small)))
    ys, xs = np.mgrid[0 : small.shape[0], 0 : small.shape[1]].astype(np.float32)
    terms = np.stack([np.ones_like(xs), xs / small.shape[1], ys / small.shape[0]], axis=-1)
    coef, *_ = np.linalg.lstsq(terms[paper], small[paper], rcond=None)
    return (terms @ coef.astype(np.float32)).astype(np.float32)


def _threshold(flat: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """Otsu, but never inside the noise and never above half the ink's contrast."""
    top = float(flat.max())
    hist = histogram(flat, top)
    unit = top / (BINS - 1)
    median = _quantile(hist, 0.5)
    deviation = np.bincount(np.abs(np.arange(BINS) - median), weights=hist, minlength=BINS)
    noise = 1.4826 * _quantile(deviation, 0.5) * unit
    # The ink's level: the 50th-brightest pixel (at most the top 0.05%), so a hairline
    # digit on a big page still counts while a few hot pixels do not.
    contrast = (_quantile(hist, 1 - min(5e-4, 50 / flat.size)) - median) * unit
    threshold = min(max(otsu(hist) * unit, median * unit + 3 * noise),
                    median * unit + 0.5 * contrast)
    levels = {"threshold": threshold, "contrast": contrast, "median": median * unit, "top": top}
    return flat > threshold, levels


def otsu(hist: np.ndarray) -> int:
    """The bin that best splits `hist` in two (maximal between-class variance)."""
    weight = np.cumsum(hist).astype(np.float64)
    mass = np.cumsum(hist * np.arange(len(hist), dtype=np.float64))
    total_w, total_m = weight[-1], mass[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (total_m * weight - mass * total_w) ** 2 / (weight * (total_w - weight))
    return int(np.argmax(np.nan_to_num(between, nan=-1.0, posinf=-1.0)))


def _dilate(mask: np.ndarray) -> np.ndarray:
    """3×3 binary dilation (the mask and its 8 neighbours) by shifted ORs: separable, cheap."""
    rows = mask.copy()
    rows[1:] |= mask[:-1]
    rows[:-1] |= mask[1:]
    out = rows.copy()
    out[:, 1:] |= rows[:, :-1]
    out[:, :-1] |= rows[:, 1:]
    return out


def erode(mask: np.ndarray) -> np.ndarray:
    """3×3 binary erosion: the complement of dilating the complement."""
    return ~_dilate(~mask)


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


def stroke_width(mask: np.ndarray) -> float:
    """Typical stroke width in a binary mask, from how deep inside the ink its pixels lie."""
    mask = np.pad(mask, 1)  # to EDT the array's edge is not paper unless padded
    depth = ndimage.distance_transform_edt(mask)[mask]
    # Depths across a stroke of width w run 1..w/2, so their mean is (w/2 + 1) / 2.
    return 4.0 * float(depth.mean()) - 2.0 if depth.size else 0.0


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
