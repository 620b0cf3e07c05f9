"""Pictures that hold no digit, of the kinds a digit reader is handed anyway.

A cell cut from a form, a crop of a cheque or a phone photo can hold nothing written, and
preprocessing still finds "ink" in it: textured paper taken whole for ink (a slab), the cell's
own frame, a ruled line, a blot, a few specks of dust, squared paper. A model trained only on
digits reads each of them as a digit with high confidence. `junk_picture` renders one such
picture; the robust recipe adds them, made into what the model sees, as "not a digit"
(digitlab.data.NOT_A_DIGIT) so that it learns to spread its confidence over every class for
them (outlier exposure) and the reader answers "no digit" (digitlab.writing.synthetic).

Strokes that *are* digits by themselves are never junk here: a lone upright bar is a 1, a
closed oval a 0.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from digitlab.writing.lines import paper_texture

KINDS = ("slab", "frame", "rule", "blot", "specks", "grid")


def _page(rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Empty paper (0..1 brightness, sometimes textured or unevenly lit) and its level."""
    h, w = (int(v) for v in rng.integers(24, 160, size=2))
    level = rng.uniform(0.7, 1.0)
    page = level * (1 - paper_texture(h, w, rng))
    if rng.random() < 0.4:
        light = np.linspace(rng.uniform(0.6, 1), rng.uniform(0.6, 1), w, dtype=np.float32)
        page = page * light[None, :]
    return page.astype(np.float32), level


def _slab(page: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A darker patch of the paper itself: a stain, a shadow, a guilloche band."""
    h, w = page.shape
    top, left = int(rng.integers(0, h // 2 + 1)), int(rng.integers(0, w // 2 + 1))
    bottom, right = int(rng.integers(top + h // 4, h + 1)), int(rng.integers(left + w // 4, w + 1))
    bottom = min(bottom, top + int(1.2 * (right - left)) + 1)  # never tall and narrow: that is a 1
    page[top:bottom, left:right] *= rng.uniform(0.3, 0.8)
    return page


def _frame(page: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The edges of the cell or box around where the digit would be, some of them."""
    h, w = page.shape
    t = int(rng.integers(1, max(2, min(h, w) // 12) + 1))
    inset = [int(rng.integers(0, max(1, min(h, w) // 6))) for _ in range(4)]
    top, left, bottom, right = inset[0], inset[1], h - 1 - inset[2], w - 1 - inset[3]
    # the whole box, or all but one edge: two edges are a digit's shape (top and right: a 7;
    # two uprights: 11), one upright alone a 1
    edges = ["top", "bottom", "left", "right"]
    if rng.random() < 0.4:
        edges.pop(int(rng.integers(4)))
    ink = rng.uniform(0.0, 0.4)
    for edge in edges:
        if edge == "top":
            page[top : top + t, left:right] = ink
        elif edge == "bottom":
            page[max(0, bottom - t) : bottom, left:right] = ink
        elif edge == "left":
            page[top:bottom, left : left + t] = ink
        else:
            page[top:bottom, max(0, right - t) : right] = ink
    return page


def _rule(page: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One or two printed lines across the picture, or a dash, never upright."""
    h, w = page.shape
    for _ in range(int(rng.integers(1, 3))):
        y, t = int(rng.integers(0, h)), int(rng.integers(1, max(2, h // 10) + 1))
        start = int(rng.integers(0, w // 3 + 1)) if rng.random() < 0.5 else 0
        end = w - int(rng.integers(0, w // 3 + 1)) if rng.random() < 0.5 else w
        page[y : y + t, start:end] = rng.uniform(0.0, 0.4)
    return page


def _blot(page: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A filled, ragged blot of ink or a smudge."""
    h, w = page.shape
    noise = ndimage.gaussian_filter(rng.standard_normal((h, w)).astype(np.float32),
                                    rng.uniform(0.08, 0.25) * min(h, w))
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
    ry = rng.uniform(0.15, 0.45) * h
    rx = max(rng.uniform(0.15, 0.45) * w, 0.8 * ry)  # round or wide: a tall thin blot is a 1
    inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 + noise / max(noise.std(), 1e-6) * 0.3 < 1
    soft = ndimage.gaussian_filter(inside.astype(np.float32), rng.uniform(0, 2))
    return page * (1 - soft * rng.uniform(0.5, 1.0))


def _specks(page: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A few dots of dust or toner."""
    h, w = page.shape
    for _ in range(int(rng.integers(1, 6))):
        y, x, r = int(rng.integers(0, h)), int(rng.integers(0, w)), int(rng.integers(1, 4))
        page[max(0, y - r) : y + r, max(0, x - r) : x + r] = rng.uniform(0.0, 0.4)
    return page


def _grid(page: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Squared paper's lines, darker than the paper texture draws them."""
    h, w = page.shape
    period = rng.uniform(6, 20)
    yy, xx = np.mgrid[0:h, 0:w]
    lines = (np.mod(yy + rng.uniform(0, period), period) < 1.3) | (
        np.mod(xx + rng.uniform(0, period), period) < 1.3)
    return np.where(lines, page * rng.uniform(0.3, 0.7), page)


_DRAW = {"slab": _slab, "frame": _frame, "rule": _rule, "blot": _blot, "specks": _specks,
         "grid": _grid}


def junk_picture(rng: np.random.Generator, kind: str | None = None) -> tuple[Image.Image, str]:
    """One grey picture with no digit in it, and its kind (one of KINDS)."""
    kind = kind or KINDS[int(rng.integers(len(KINDS)))]
    page, _ = _page(rng)
    page = _DRAW[kind](page, rng)
    if rng.random() < 0.5:
        page = ndimage.gaussian_filter(page, rng.uniform(0.3, 1.2))
    page = page + rng.standard_normal(page.shape).astype(np.float32) * rng.uniform(0, 0.04)
    pixels = np.clip(page * 255, 0, 255).astype(np.uint8)
    if rng.random() < 0.15:  # white on black, as a screen or an inverted scan gives it
        pixels = 255 - pixels
    return Image.fromarray(pixels), kind
