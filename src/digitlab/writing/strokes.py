"""Pen strokes: an MNIST digit traced to its centre line and re-drawn with a round pen.

The digit is upscaled, thinned to 1-pixel centre lines, smoothed, and re-drawn with an
anti-aliased round pen of an exact width, so the stroke width no longer depends on how
thick the original writer's pen was.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from digitlab.errors import ConfigError

WORK_SCALE = 4  # MNIST is thinned at 112×112: fine enough for smooth curves, still fast
MAX_PEN = 7  # ink height / pen width at the thickest: thicker, and loops of 6, 8, 9 fill in


def thin(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning: a binary mask reduced to 1-pixel-wide centre lines."""
    img = np.pad(mask.astype(np.uint8), 1)
    while True:
        changed = False
        for step in (0, 1):
            c = img[1:-1, 1:-1]
            p = [img[:-2, 1:-1], img[:-2, 2:], img[1:-1, 2:], img[2:, 2:],
                 img[2:, 1:-1], img[2:, :-2], img[1:-1, :-2], img[:-2, :-2]]  # P2..P9
            b = sum(q.astype(np.int32) for q in p)
            a = sum(((p[k] == 0) & (p[(k + 1) % 8] == 1)).astype(np.int32) for k in range(8))
            if step == 0:
                side = (p[0] * p[2] * p[4] == 0) & (p[2] * p[4] * p[6] == 0)
            else:
                side = (p[0] * p[2] * p[6] == 0) & (p[0] * p[4] * p[6] == 0)
            drop = (c == 1) & (b >= 2) & (b <= 6) & (a == 1) & side
            if drop.any():
                c[drop] = 0
                changed = True
        if not changed:
            return img[1:-1, 1:-1].astype(bool)


def trace_centre_lines(digit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A digit's centre lines as a graph: pixel points (N×2, x y) and edges (E×2 indices)."""
    size = digit.shape[1] * WORK_SCALE, digit.shape[0] * WORK_SCALE
    ink = np.asarray(Image.fromarray(digit).resize(size, Image.Resampling.BICUBIC)) > 110
    parts, count = ndimage.label(ink, structure=np.ones((3, 3)))
    if count > 1:  # MNIST's stray specks would become blots once drawn with a thick pen
        sizes = ndimage.sum(ink, parts, range(1, count + 1))
        ink = np.isin(parts, 1 + np.flatnonzero(sizes >= 0.1 * sizes.max()))
    skeleton = np.pad(thin(ink), 1)
    ys, xs = np.nonzero(skeleton)
    index = np.full(skeleton.shape, -1)
    index[ys, xs] = np.arange(len(ys))
    edges = []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        other = index[ys + dy, xs + dx]
        linked = other >= 0
        if dy and dx:  # a diagonal step is drawn only where no two-step path already is
            linked &= ~skeleton[ys, xs + dx] & ~skeleton[ys + dy, xs]
        edges.append(np.stack([np.flatnonzero(linked), other[linked]], axis=1))
    return np.stack([xs, ys], axis=1).astype(np.float64), np.concatenate(edges)


def smooth(points: np.ndarray, edges: np.ndarray, rounds: int = 6) -> np.ndarray:
    """Ease the pixel staircase out of a centre line; ends and junctions stay put."""
    degree = np.bincount(edges.ravel(), minlength=len(points))
    free = (degree == 2)[:, None]
    for _ in range(rounds):
        total = np.zeros_like(points)
        np.add.at(total, edges[:, 0], points[edges[:, 1]])
        np.add.at(total, edges[:, 1], points[edges[:, 0]])
        points = np.where(free, 0.5 * points + 0.25 * total, points)
    return points


def redraw_with_pen(
    digit: np.ndarray, height: float, width: float, angle: float, slant: float,
    max_width: float = np.inf,
) -> np.ndarray:
    """Ink coverage (0..1, cropped to the ink) of `digit` re-drawn with a round pen.

    `height` is the ink height in pixels, `width` the pen width, `angle` a rotation in
    degrees and `slant` a horizontal shear; the drawing is shrunk to fit `max_width`.
    """
    pts, edges = trace_centre_lines(digit)
    if len(pts) == 0:
        raise ConfigError("an MNIST digit has no ink to re-draw")
    pts = smooth(pts, edges)
    pts = pts - pts.mean(axis=0)
    t = np.deg2rad(angle)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    pts = pts @ (rot @ np.array([[1.0, slant], [0.0, 1.0]])).T
    ext = np.maximum(pts.max(axis=0) - pts.min(axis=0), 1.0)
    scale = max(min((height - width) / ext[1], (max_width - width) / ext[0]), 1.0 / ext[1])
    radius = width / 2
    pad = int(np.ceil(radius)) + 2
    pts = np.round((pts - pts.min(axis=0)) * scale + pad)
    size = np.ceil(ext * scale).astype(int) + 2 * pad + 1
    canvas = Image.new("L", (int(size[0]), int(size[1])), 0)
    draw = ImageDraw.Draw(canvas)
    draw.point([tuple(p) for p in pts.tolist()], fill=255)
    for a, b in edges.tolist():
        draw.line([tuple(pts[a]), tuple(pts[b])], fill=255, width=1)
    dist = ndimage.distance_transform_edt(np.asarray(canvas) == 0)
    alpha = np.clip(radius + 0.5 - dist, 0.0, 1.0).astype(np.float32)  # anti-aliased edge
    rows, cols = np.nonzero(alpha)
    return alpha[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def write_with_pen(
    digit: np.ndarray, rng: np.random.Generator, height: float, pen: float, tilt: float,
    slant: float, max_width: float = np.inf, lean: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """`digit` written `height` px tall with a round pen `pen` px wide (never thicker than
    height / MAX_PEN), turned by up to ±`tilt` degrees and sheared by up to ±`slant` around
    `lean` (the angle and shear a writer keeps across a number), drawn from `rng`.

    The one place where a training digit (writing.synthetic) and a benchmark digit
    (writing.pages, wild, wild_hard) get their pen; they differ only in the ranges they pass.
    """
    return redraw_with_pen(digit, height, min(pen, height / MAX_PEN), lean[0] + rng.uniform(-tilt, tilt),
                           lean[1] + rng.uniform(-slant, slant), max_width)
