"""Measures every pipeline takes of a picture: where its ink is, histograms and Otsu, resizing,
3×3 dilation and erosion, stroke width. One function per measure, shared by robust, plain,
product and number splitting.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

EIGHT = np.ones((3, 3), dtype=bool)  # 8-connectivity: pixels touching at a corner are joined
BINS = 1024  # histogram resolution for quantiles and Otsu


def ink_box(ink: np.ndarray, level: float = 1 / 255) -> list[int] | None:
    """[x0, y0, x1, y1] (x1, y1 exclusive) around values above `level`, or None."""
    rows, cols = np.flatnonzero((ink > level).any(axis=1)), np.flatnonzero((ink > level).any(axis=0))
    if rows.size == 0:
        return None
    return [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1]


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
    return 4.0 * float(depth.mean()) - 2.0 if depth.size else 0.0


