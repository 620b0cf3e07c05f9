"""Straight edges that run into the picture's border: a sheet's edge, a table's, a hard shadow.

Lighting correction flattens the paper on either side of such an edge, but not the edge itself:
it survives as a long thin line reaching the frame, and a model shown it beside a 1 reads a 5.
A component is taken for an edge when it touches the border, is thin and roughly straight, and
is clearly longer than all the other ink together; or for shade (a corner of shadow or table the
correction missed) when it touches the border and is far thicker or clearly fainter than the
other ink's strokes (a pen's ink is about equally dark along a digit; the rest of a shadow is not).
When all of the ink reaches the border, only faintness counts: a straight stroke there may be a
1 cropped tight.
Either is kept when nothing else is left, as a lone stroke (a 1 cropped tight) may be all there is.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from digitlab.reading.measures import EIGHT

TOUCH = 0.01  # within this share of the longer side (and at least 2 px) of the border
MIN_LENGTH = 0.3  # an edge spans at least this share of the picture's longer side
MAX_THICKNESS = 0.12  # its area / length is at most this share of its length
MAX_BEND = 0.1  # the spread (std) across its main axis over its length
LONGER_THAN_REST = 1.3  # its length over the longer side of the other ink's box
THICKER_THAN_REST = 3.0  # shade: its deepest point over the other ink's (95th percentile)
CRUMB, FAR = 0.1, 0.3  # a crumb of shade: under this share of the other ink's area, and farther
# from the other ink's box than this share of its longer side
FAINTER = 0.8  # shade: its typical strength over the other ink's


def find_border_lines(mask: np.ndarray, strength: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """A mask of the components of `mask` that are edges (see module), and how many there are.

    `strength` (the ink map `mask` was thresholded from) lets faint shade be told from strokes.
    """
    h, w = mask.shape
    band = max(2, round(TOUCH * max(h, w)))
    if not (mask[:band].any() or mask[-band:].any() or mask[:, :band].any() or mask[:, -band:].any()):
        return np.zeros_like(mask), 0  # the usual case: nothing reaches the frame
    labels, count = ndimage.label(mask, structure=EIGHT)
    boxes = ndimage.find_objects(labels)
    touching = [index for index, (rows, cols) in enumerate(boxes, start=1)
                if rows.start < band or rows.stop > h - band or cols.start < band or cols.stop > w - band]
    if not touching or count == 1:
        return np.zeros_like(mask), 0  # nothing else: what touches the frame may be the digit
    depth = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    others = mask & ~np.isin(labels, touching)
    found = []
    for index in touching:
        component = labels == index
        if others.any():  # judged against the ink that stays off the frame
            if _not_a_stroke(component, boxes[index - 1], others, depth, strength):
                found.append(index)
        elif strength is not None and _fainter(component, mask & ~component, strength):
            # All of the ink reaches the frame (a digit cropped tight beside shade): a
            # straight stroke may be the digit, so only faintness tells shade here.
            found.append(index)
    if not found or len(found) == count:
        return np.zeros_like(mask), 0
    return np.isin(labels, found), len(found)


def _not_a_stroke(component: np.ndarray, where: tuple[slice, slice], rest: np.ndarray,
                  depth: np.ndarray, strength: np.ndarray | None) -> bool:
    """Whether a component reaching the frame is an edge or shade rather than part of the digit
    that `rest` is (see module)."""
    rows, cols = np.flatnonzero(rest.any(axis=1)), np.flatnonzero(rest.any(axis=0))
    extent = max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
    if _is_line(component, max(component.shape)) and _length(component) >= LONGER_THAN_REST * extent:
        return True  # an edge
    if float(depth[component].max()) >= THICKER_THAN_REST * max(float(np.percentile(depth[rest], 95)), 1.0):
        return True  # shade
    row, col = where
    gap = max(cols[0] - col.stop, col.start - cols[-1] - 1, rows[0] - row.stop, row.start - rows[-1] - 1)
    if component.sum() < CRUMB * rest.sum() and gap > FAR * extent:
        return True  # a crumb of shade in a corner, far from the digit
    return strength is not None and _fainter(component, rest, strength)


def _fainter(component: np.ndarray, rest: np.ndarray, strength: np.ndarray) -> bool:
    """Shade: clearly fainter than the pen, whose ink is about equally dark along a digit."""
    return float(np.median(strength[component])) < FAINTER * float(np.median(strength[rest]))


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
