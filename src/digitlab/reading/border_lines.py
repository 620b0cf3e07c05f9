"""Straight edges that run into the picture's border: a sheet's edge, a table's, a hard shadow.

Lighting correction flattens the paper on either side of such an edge, but not the edge itself:
it survives as a long thin line reaching the frame, and a model shown it beside a 1 reads a 5.
A component is taken for an edge when it touches the border, is thin and roughly straight, and
is clearly longer than all the other ink together; or for shade (a corner of shadow or table the
correction missed) when it touches the border and is far thicker than the other ink's strokes.
Either is kept when nothing else is left, as a lone stroke (a 1 cropped tight) may be all there is.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

EIGHT = np.ones((3, 3), dtype=bool)
TOUCH = 0.01  # within this share of the longer side (and at least 2 px) of the border
MIN_LENGTH = 0.3  # an edge spans at least this share of the picture's longer side
MAX_THICKNESS = 0.12  # its area / length is at most this share of its length
MAX_BEND = 0.1  # the spread (std) across its main axis over its length
LONGER_THAN_REST = 1.3  # its length over the longer side of the other ink's box
THICKER_THAN_REST = 3.0  # shade: its deepest point over the other ink's (95th percentile)
CRUMB, FAR = 0.1, 0.3  # a crumb of shade: under this share of the other ink's area, and farther
# from the other ink's box than this share of its longer side


def find_border_lines(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """A mask of the components of `mask` that are edges (see module), and how many there are."""
    h, w = mask.shape
    band = max(2, round(TOUCH * max(h, w)))
    if not (mask[:band].any() or mask[-band:].any() or mask[:, :band].any() or mask[:, -band:].any()):
        return np.zeros_like(mask), 0  # the usual case: nothing reaches the frame
    labels, count = ndimage.label(mask, structure=EIGHT)
    touching = []
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        rows, cols = box
        if rows.start < band or rows.stop > h - band or cols.start < band or cols.stop > w - band:
            touching.append(index)
    if not touching or len(touching) == count:
        return np.zeros_like(mask), 0  # nothing else: what touches the frame may be the digit
    depth = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    rest = mask & ~np.isin(labels, touching)
    rows, cols = np.flatnonzero(rest.any(axis=1)), np.flatnonzero(rest.any(axis=0))
    extent = max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
    stroke = float(np.percentile(depth[rest], 95))
    area, box = int(rest.sum()), (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    found = []
    for index, (rows_, cols_) in zip(touching, (ndimage.find_objects(labels)[i - 1] for i in touching),
                                     strict=True):
        component = labels == index
        gap = max(box[0] - cols_.stop, cols_.start - box[2], box[1] - rows_.stop, rows_.start - box[3])
        if _is_line(component, max(h, w)) and _length(component) >= LONGER_THAN_REST * extent:
            found.append(index)  # an edge
        elif float(depth[component].max()) >= THICKER_THAN_REST * max(stroke, 1.0):
            found.append(index)  # shade
        elif component.sum() < CRUMB * area and gap > FAR * extent:
            found.append(index)  # a crumb of shade in a corner, far from the digit
    if not found:
        return np.zeros_like(mask), 0
    return np.isin(labels, found), len(found)


def _is_line(component: np.ndarray, size: int) -> bool:
    ys, xs = np.nonzero(component)
    if len(ys) < 3:
        return False
    length, across = _spreads(ys, xs)
    return (length >= MIN_LENGTH * size and len(ys) / length <= MAX_THICKNESS * length
            and across <= MAX_BEND * length)


def _length(component: np.ndarray) -> float:
    ys, xs = np.nonzero(component)
    return _spreads(ys, xs)[0]


def _spreads(ys: np.ndarray, xs: np.ndarray) -> tuple[float, float]:
    """Extent along the main axis, and the standard deviation across it, of points (pixels)."""
    points = np.stack([xs, ys], axis=1).astype(np.float64)
    points -= points.mean(axis=0)
    _, vectors = np.linalg.eigh(points.T @ points)
    along, across = points @ vectors[:, 1], points @ vectors[:, 0]
    return float(along.max() - along.min()) + 1.0, float(across.std())
