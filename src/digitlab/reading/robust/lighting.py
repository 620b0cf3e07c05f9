"""Lighting: the paper's slowly varying level (shadows, vignetting, a sheet's edge), estimated
on a small copy, so that what stands above it is ink whatever the light.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from digitlab.reading.measures import BINS, dilate, histogram, otsu, resize, shrink

BACKGROUND_SIZE = 64  # shorter side of the copy the lighting is estimated on
STEP_SIZE = 128  # ... and of the copy on which steps in the paper's level are followed
FLAT = 0.5 / 255  # paper whose estimated level varies less than this is taken as even
LIGHTINGS = ("opening", "steps", "plane")  # how the paper's level is estimated (see estimate_paper)


def estimate_paper(
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
    paper = ~dilate(small > otsu(hist) / (BINS - 1))
    if np.count_nonzero(paper) < 10:
        return np.full_like(small, float(np.median(small)))
    ys, xs = np.mgrid[0 : small.shape[0], 0 : small.shape[1]].astype(np.float32)
    terms = np.stack([np.ones_like(xs), xs / small.shape[1], ys / small.shape[0]], axis=-1)
    coef, *_ = np.linalg.lstsq(terms[paper], small[paper], rcond=None)
    return (terms @ coef.astype(np.float32)).astype(np.float32)


