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

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from digitlab.reading.measures import EIGHT, box_side, ink_box
from digitlab.reading.parameters import CLEANING


def find_border_lines(mask: np.ndarray, strength: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """A mask of the components of `mask` that are edges (see module), and how many there are.

    `strength` (the ink map `mask` was thresholded from) lets faint shade be told from strokes.
    """
    h, w = mask.shape
    band = max(2, round(CLEANING.touch * max(h, w)))
    if not (mask[:band].any() or mask[-band:].any() or mask[:, :band].any() or mask[:, -band:].any()):
        return np.zeros_like(mask), 0  # the usual case: nothing reaches the frame
    labels, count = ndimage.label(mask, structure=EIGHT)
    boxes = ndimage.find_objects(labels)
    touching = [index for index, (rows, cols) in enumerate(boxes, start=1)
                if rows.start < band or rows.stop > h - band or cols.start < band or cols.stop > w - band]
    if not touching or count == 1:
        return np.zeros_like(mask), 0  # nothing else: what touches the frame may be the digit
    made: list[np.ndarray] = []

    def depth() -> np.ndarray:  # the distance transform, made once and only if a test needs it
        if not made:
            made.append(ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1])
        return made[0]

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
                  depth: Callable[[], np.ndarray], strength: np.ndarray | None) -> bool:
    """Whether a component reaching the frame is an edge or shade rather than part of the digit
    that `rest` is (see module). Any one test decides: the cheap ones go first, the one that
    needs the distance transform (`depth()`, made on first use) last."""
    box = ink_box(rest, level=0)
    assert box is not None  # the caller has other ink
    x0, y0, x1, y1 = box
    extent = box_side(box)
    if _is_line(component, max(component.shape)) and _length(component) >= CLEANING.longer_than_rest * extent:
        return True  # an edge
    row, col = where
    gap = max(x0 - col.stop, col.start - x1, y0 - row.stop, row.start - y1)
    if component.sum() < CLEANING.crumb * rest.sum() and gap > CLEANING.far * extent:
        return True  # a crumb of shade in a corner, far from the digit
    if strength is not None and _fainter(component, rest, strength):
        return True  # shade, fainter than the pen
    rest_depth = max(float(np.percentile(depth()[rest], CLEANING.rest_depth_percentile)), 1)
    return float(depth()[component].max()) >= CLEANING.thicker_than_rest * rest_depth  # thick shade


def _fainter(component: np.ndarray, rest: np.ndarray, strength: np.ndarray) -> bool:
    """Shade: clearly fainter than the pen, whose ink is about equally dark along a digit."""
    return float(np.median(strength[component])) < CLEANING.fainter * float(np.median(strength[rest]))


def _is_line(component: np.ndarray, size: int) -> bool:
    """Whether a component is a thin, nearly straight line at least a share of `size` long."""
    ys, xs = np.nonzero(component)
    if len(ys) < CLEANING.min_line_pixels:
        return False
    length, across = _spreads(ys, xs)
    return (length >= CLEANING.min_length * size and len(ys) / length <= CLEANING.max_thickness * length
            and across <= CLEANING.max_bend * length)


def _length(component: np.ndarray) -> float:
    """A component's extent along its main axis, in px."""
    ys, xs = np.nonzero(component)
    return _spreads(ys, xs)[0]


def _spreads(ys: np.ndarray, xs: np.ndarray) -> tuple[float, float]:
    """Extent along the main axis, and the standard deviation across it, of points (pixels)."""
    points = np.stack([xs, ys], axis=1).astype(np.float64)
    points -= points.mean(axis=0)
    _, vectors = np.linalg.eigh(points.T @ points)
    along, across = points @ vectors[:, 1], points @ vectors[:, 0]
    return float(along.max() - along.min()) + 1, float(across.std())
