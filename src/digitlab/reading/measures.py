"""Measures every pipeline takes of a picture, one function each, shared by robust, plain,
product and number splitting: which way round the ink is (`ink_is_dark`), the border's grey
level (`border_median`), where the ink is (`ink_box`, `crop`, `box_side`), histograms and Otsu,
resizing, 3×3 dilation and erosion, stroke width.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from digitlab.reading.parameters import EPSILON, HISTOGRAM_FLOOR, INK, POLARITY

EIGHT = np.ones((3, 3), dtype=bool)  # 8-connectivity: pixels touching at a corner are joined
BINS = 1024  # histogram resolution for quantiles and Otsu


def ink_box(ink: np.ndarray, level: float = 1 / 255) -> list[int] | None:
    """[x0, y0, x1, y1] (x1, y1 exclusive) around values above `level`, or None."""
    above = ink > level  # compared once; the columns are looked for only between the rows
    rows = np.flatnonzero(above.any(axis=1))
    if rows.size == 0:
        return None
    y0, y1 = int(rows[0]), int(rows[-1]) + 1
    cols = np.flatnonzero(above[y0:y1].any(axis=0))
    return [int(cols[0]), y0, int(cols[-1]) + 1, y1]


def crop(values: np.ndarray, box: list[int]) -> np.ndarray:
    """The part of `values` inside `box` ([x0, y0, x1, y1], as `ink_box` gives)."""
    x0, y0, x1, y1 = box
    return values[y0:y1, x0:x1]


def box_side(box: list[int]) -> int:
    """The longer side of `box`, in px."""
    x0, y0, x1, y1 = box
    return max(x1 - x0, y1 - y0)


def unit_peak(values: np.ndarray) -> np.ndarray:
    """`values` scaled so that their peak is 1 (a blank map stays blank)."""
    return values / max(float(values.max()), EPSILON)


def is_light(level: float) -> bool:
    """A grey level lighter than mid-grey."""
    return level > 0.5


def border_median(gray: np.ndarray, share: float) -> float:
    """The median grey level of a band around the picture, `share` of its shorter side wide
    (at least 1 px): the paper or backdrop, for pictures whose subject keeps off the frame."""
    h, w = gray.shape
    band = max(1, round(share * min(h, w)))
    border = np.concatenate([gray[:band].ravel(), gray[-band:].ravel(),
                             gray[:, :band].ravel(), gray[:, -band:].ravel()])
    return float(np.median(border))


def ink_is_dark(gray: np.ndarray, paper: float | None = None) -> bool:
    """Which way round the ink is, for every pipeline: True for dark ink on light paper.

    `paper`: the paper's grey level where the caller measured it (`border_median`): light paper
    carries dark ink. Without it the paper is the majority of pixels: a median clearly light or
    dark decides; near mid-grey, the longer tail of the histogram is the ink. A dark median can
    also be paper half in shadow (or a dark table around a sheet): in a photo, dark ink is still
    taken when thin dark strokes clearly stand out from their surroundings and light ones do not.
    """
    if paper is not None:
        return is_light(paper)
    hist = histogram(gray, 1)
    top = BINS - 1
    background = quantile(hist, 0.5) / top
    if abs(background - 0.5) > POLARITY.clear_of_mid_grey:
        if is_light(background) or min(gray.shape) < POLARITY.photo_side:
            return is_light(background)
        dark, light = _thin_contrasts(gray)
        return dark >= INK.min_contrast and dark >= POLARITY.clearly * light
    low, high = quantile(hist, POLARITY.tail) / top, quantile(hist, 1 - POLARITY.tail) / top
    return background - low > high - background


def _thin_contrasts(gray: np.ndarray) -> tuple[float, float]:
    """How far the darkest and the lightest thin strokes stand out from a local median, on a
    small copy. A median over a window much wider than a stroke follows the paper, steps in its
    level included (unlike a mean or an opening), whichever way the ink goes."""
    small, _ = shrink(gray, min(1, POLARITY.thin_copy_side / min(gray.shape)))
    k = max(POLARITY.min_window, min(small.shape) // POLARITY.thin_window_share)
    residual = small - ndimage.median_filter(small, size=(k, k))
    low, high = np.percentile(residual, POLARITY.thin_percentiles)
    return float(-low), float(high)


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
    index = (values * np.float32((BINS - 1) / max(top, HISTOGRAM_FLOOR))).astype(np.intp).ravel()
    np.minimum(index, BINS - 1, out=index)
    np.maximum(index, 0, out=index)
    return np.bincount(index, minlength=BINS)


def quantile(hist: np.ndarray, q: float) -> int:
    cdf = np.cumsum(hist)
    return int(np.searchsorted(cdf, q * cdf[-1]))


def otsu(hist: np.ndarray) -> int:
    """The bin that best splits `hist` in two (maximal between-class variance)."""
    weight = np.cumsum(hist).astype(np.float64)
    mass = np.cumsum(hist * np.arange(len(hist), dtype=np.float64))
    total_w, total_m = weight[-1], mass[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (total_m * weight - mass * total_w) ** 2 / (weight * (total_w - weight))
    return int(np.argmax(np.nan_to_num(between, nan=-1.0, posinf=-1.0)))


def dilate(mask: np.ndarray) -> np.ndarray:
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
    return ~dilate(~mask)


def stroke_width(mask: np.ndarray) -> float:
    """Typical stroke width in a binary mask, from how deep inside the ink its pixels lie."""
    mask = np.pad(mask, 1)  # to EDT the array's edge is not paper unless padded
    depth = ndimage.distance_transform_edt(mask)[mask]
    # Depths across a stroke of width w run 1..w/2, so their mean is (w/2 + 1) / 2.
    return 2 * (2 * float(depth.mean()) - 1) if depth.size else 0.0


