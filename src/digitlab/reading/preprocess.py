"""User image → the 28×28 tensor a model sees, made the way MNIST was made.

`ink_map` turns any photo or drawing into an ink-bright float map (polarity, lighting
and specks dealt with); `normalise_digit` crops, scales and centres one digit of it.
`segment.py` reuses both for multi-digit images. Decoding files lives in `images.py`, the
pipelines by name in `pipelines.py`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from digitlab.reading.images import to_grayscale

logger = logging.getLogger(__name__)

WORK_SIZE = 768  # longest side we analyse at: 8 digits in a row still get ~90 px each
FLOAT_PIXELS = 1_000_000  # images up to this size are shrunk in floating point
QUICK_SIZE = 128  # a first look at this size is enough for a digit at least QUICK_DIGIT px
QUICK_DIGIT, QUICK_STROKE = 56, 3.0  # tall there, drawn in strokes at least QUICK_STROKE wide
BACKGROUND_SIZE = 64  # shorter side of the copy the lighting is estimated on
FLAT = 0.5 / 255  # paper whose estimated level varies less than this is taken as even
DIGIT_SIZE, CANVAS, CENTRE = 20, 28, 14.0  # MNIST: 20-px box, 28-px field, mass at (14, 14)
MIN_STROKE = TARGET_STROKE = 2.5  # output pixels (MNIST: median 2.56); thinner is grown to it
SPECK_FRACTION = 0.02  # components smaller than this share of the largest are specks
MIN_CONTRAST = 0.08
MIN_INK_PIXELS, MAX_INK_FRACTION = 10, 0.5
MIN_EXTENT = 0.03  # the ink must span this share of the image's longer side (a hairline 1 does)
MIN_ELONGATION, SMALL_INK_FRACTION = 2.5, 0.02  # a digit is longer than 2.5 stroke widths
MIN_COHERENCE = 0.25  # iid noise scores 1/9, a 1-px line 1/3 (see _coherence)
EIGHT = np.ones((3, 3), dtype=bool)
BINS = 1024  # histogram resolution for quantiles and Otsu
MID_SIZE = 4 * DIGIT_SIZE  # digits are measured and thickened at this size, then averaged down

@dataclass
class Prepared:
    """The model's input (28×28 floats in [0, 1], ink bright) and what was done to get it."""

    pixels: torch.Tensor
    steps: dict[str, Any] = field(default_factory=dict)
    has_ink: bool = True


def preprocess_naive(image: Image.Image) -> Prepared:
    """The tutorial's way: grayscale, squash to 28×28, assume white ink on black."""
    gray = image.convert("L").resize((CANVAS, CANVAS), Image.Resampling.BILINEAR)
    pixels = torch.from_numpy(np.asarray(gray, dtype=np.float32) / 255.0)
    return Prepared(pixels=pixels, steps={"pipeline": "naive", "size": list(image.size)})


def preprocess_robust(image: Image.Image) -> Prepared:
    """Find the ink whatever the polarity, lighting or format; crop, scale, centre as MNIST.

    A first look at QUICK_SIZE is enough when it finds a big digit drawn with strokes several
    pixels wide (most canvases and photos): MNIST's own digits were 20 px. Anything else
    (small or thin ink, no ink) is looked at again at up to WORK_SIZE.
    """
    ink, info = _quick_look(image) if max(image.size) > QUICK_SIZE else (None, {})
    if ink is None:
        ink, info = ink_map(image)
    steps: dict[str, Any] = {"pipeline": "robust", **info, "ink_box": None, "scale": None}
    if not info["has_ink"]:
        return Prepared(torch.zeros(CANVAS, CANVAS), steps, has_ink=False)
    box = ink_box(ink)
    assert box is not None  # has_ink guarantees some ink
    pixels, details = _normalise(ink[box[1] : box[3], box[0] : box[2]])
    steps.update(details, ink_box=to_original(box, info), scale=details["scale"] * info["work_scale"])
    return Prepared(pixels, steps)


def _quick_look(image: Image.Image) -> tuple[np.ndarray | None, dict[str, Any]]:
    """ink_map at QUICK_SIZE, or None when its digit is too small or its strokes too thin."""
    ink, info = ink_map(image, QUICK_SIZE)
    box = ink_box(ink) if info["has_ink"] else None
    if box is None or max(box[2] - box[0], box[3] - box[1]) < QUICK_DIGIT:
        return None, info
    mask = ink > 0.5
    edge = mask & ~_erode(mask)
    # A stroke w wide and L long has area wL and about 2L edge pixels.
    if 2 * np.count_nonzero(mask) < QUICK_STROKE * np.count_nonzero(edge):
        return None, info
    return ink, info


def ink_map(image: Image.Image, work_size: int = WORK_SIZE) -> tuple[np.ndarray, dict[str, Any]]:
    """Ink-bright floats in [0, 1] at working resolution (≤ work_size), plus what was found.

    The info dict: size, work_scale (working / original pixels), inverted, threshold,
    contrast, has_ink and, when there is none, reason.
    """
    gray, work_scale = _working_gray(image, work_size)
    inverted = _is_dark_on_light(gray)
    ink = 1.0 - gray if inverted else gray
    flat = np.maximum(ink - _background(ink), np.float32(0), dtype=np.float32)
    mask, levels = _threshold(flat)
    mask = _drop_specks(mask)
    reason = _why_no_ink(mask, levels["contrast"])
    info: dict[str, Any] = {
        "size": list(image.size), "work_scale": work_scale, "inverted": inverted,
        "threshold": round(levels["threshold"], 4), "contrast": round(levels["contrast"], 4),
        "has_ink": not reason,
    }
    if reason:
        info["reason"] = reason
        return np.zeros_like(flat), info
    low = levels["median"]
    high = _quantile(_histogram(flat[mask], levels["top"]), 0.9) * levels["top"] / (BINS - 1)
    # Keep the anti-aliased rim around the mask, zero everything else (texture, specks).
    near = _dilate(mask)
    scaled = (flat - np.float32(low)) * np.float32(1 / max(high - low, 1e-6))
    np.minimum(scaled, 1, out=scaled)
    np.maximum(scaled, 0, out=scaled)
    scaled[~near] = 0
    return scaled, info


def normalise_digit(ink: np.ndarray) -> torch.Tensor:
    """One digit's ink-bright map → 28×28: cropped, thickened if thin, 20 px, mass-centred."""
    box = ink_box(ink)
    if box is None:
        return torch.zeros(CANVAS, CANVAS)
    return _normalise(ink[box[1] : box[3], box[0] : box[2]])[0]


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
        return _shrink(to_grayscale(image), factor)
    if factor < 1 and image.mode in ("1", "P", "PA"):
        image = image.convert("RGBA" if "A" in image.mode or "transparency" in image.info else "L")
    if factor < 1 and image.mode in ("L", "RGB", "RGBA", "LA", "CMYK"):
        size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
        return to_grayscale(image.resize(size, Image.Resampling.BOX)), size[0] / image.width
    return _shrink(to_grayscale(image), factor)


def _shrink(values: np.ndarray, factor: float) -> tuple[np.ndarray, float]:
    """Area-average down by `factor` (never up); return the array and the factor used."""
    if factor >= 1:
        return values, 1.0
    h, w = values.shape
    small = _resize(values, (max(1, round(h * factor)), max(1, round(w * factor))))
    return small, small.shape[1] / w


def _resize(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resample to `shape` (rows, cols): area averaging down, bilinear up."""
    down = shape[0] * shape[1] < values.size
    resample = Image.Resampling.BOX if down else Image.Resampling.BILINEAR
    image = Image.fromarray(values.astype(np.float32)).resize(shape[::-1], resample)
    return np.asarray(image, dtype=np.float32)


def _histogram(values: np.ndarray, top: float) -> np.ndarray:
    """BINS-bin histogram of values in [0, top]: quantiles and Otsu without sorting."""
    index = (values * np.float32((BINS - 1) / max(top, 1e-12))).astype(np.intp).ravel()
    np.minimum(index, BINS - 1, out=index)
    np.maximum(index, 0, out=index)
    return np.bincount(index, minlength=BINS)


def _quantile(hist: np.ndarray, q: float) -> int:
    cdf = np.cumsum(hist)
    return int(np.searchsorted(cdf, q * cdf[-1]))


def _is_dark_on_light(gray: np.ndarray) -> bool:
    """Paper is the majority: a light median means dark ink; mid-grey, the longer tail is ink."""
    hist = _histogram(gray, 1.0)
    background = _quantile(hist, 0.5) / (BINS - 1)
    if abs(background - 0.5) > 0.15:
        return background > 0.5
    low, high = _quantile(hist, 0.005) / (BINS - 1), _quantile(hist, 0.995) / (BINS - 1)
    return background - low > high - background


def _background(ink: np.ndarray) -> np.ndarray | np.float32:
    """Slowly varying paper level (shadows, vignetting): a wide grey opening, on a small copy."""
    small, factor = _shrink(ink, BACKGROUND_SIZE / min(ink.shape))
    k = max(3, min(small.shape) // 3)  # wider than any stroke, so strokes are opened away
    level = ndimage.uniform_filter(ndimage.grey_opening(small, size=(k, k)), size=k)
    low, high = float(level.min()), float(level.max())
    if high - low < FLAT:  # evenly lit (a canvas, a scan): one level does, no need to resize
        return np.float32(0.5 * (low + high))
    return level if factor == 1.0 else _resize(level, ink.shape)


def _threshold(flat: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """Otsu, but never inside the noise and never above half the ink's contrast."""
    top = float(flat.max())
    hist = _histogram(flat, top)
    unit = top / (BINS - 1)
    median = _quantile(hist, 0.5)
    deviation = np.bincount(np.abs(np.arange(BINS) - median), weights=hist, minlength=BINS)
    noise = 1.4826 * _quantile(deviation, 0.5) * unit
    # The ink's level: the 50th-brightest pixel (at most the top 0.05%), so a hairline
    # digit on a big page still counts while a few hot pixels do not.
    contrast = (_quantile(hist, 1 - min(5e-4, 50 / flat.size)) - median) * unit
    threshold = min(max(_otsu(hist) * unit, median * unit + 3 * noise),
                    median * unit + 0.5 * contrast)
    levels = {"threshold": threshold, "contrast": contrast, "median": median * unit, "top": top}
    return flat > threshold, levels


def _otsu(hist: np.ndarray) -> int:
    """The bin that best splits `hist` in two (maximal between-class variance)."""
    weight = np.cumsum(hist).astype(np.float64)
    mass = np.cumsum(hist * np.arange(BINS, dtype=np.float64))
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


def _erode(mask: np.ndarray) -> np.ndarray:
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


def _stroke_width(mask: np.ndarray) -> float:
    """Typical stroke width in a binary mask, from how deep inside the ink its pixels lie."""
    mask = np.pad(mask, 1)  # to EDT the array's edge is not paper unless padded
    depth = ndimage.distance_transform_edt(mask)[mask]
    # Depths across a stroke of width w run 1..w/2, so their mean is (w/2 + 1) / 2.
    return 4.0 * float(depth.mean()) - 2.0 if depth.size else 0.0


def _why_no_ink(mask: np.ndarray, contrast: float) -> str | None:
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
        if max(blob.shape) < MIN_ELONGATION * _stroke_width(blob):
            return "only a dot, no strokes"
    return None


def _normalise(crop: np.ndarray) -> tuple[torch.Tensor, dict[str, Any]]:
    """A tightly cropped digit → 28×28 tensor, and the stroke width, thickening and scale used."""
    # Rounded: 1 - x and x differ by float noise, and anti-aliased edges sit exactly at the
    # 0.5 the stroke width is measured at, so noise would decide between ink and paper there.
    crop = np.round(crop / max(float(crop.max()), 1e-6), 5)
    mid, factor = _shrink(crop, MID_SIZE / max(crop.shape))
    # Max-pool-like footprint: every mid pixel a stroke touches, so thin lines stay connected.
    touched = _resize((crop > 0.5).astype(np.float32), mid.shape) > 0.05
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
    width = _stroke_width(mid > 0.5)
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

