"""Digits drawn with PIL for the image tests, and how alike two preprocessed results are."""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

# Strokes per digit as polylines in a unit box (x right, y down).
_OVAL = [(0.5 + 0.45 * math.sin(t), 0.5 - 0.5 * math.cos(t))
         for t in np.linspace(0, 2 * math.pi, 33)]
_FIVE_BODY = [(0.15, 0.45), (0.6, 0.38), (0.9, 0.6), (0.85, 0.9), (0.5, 1.0), (0.1, 0.9)]
STROKES: dict[str, list[list[tuple[float, float]]]] = {
    "0": [_OVAL],
    "1": [[(0.3, 0.2), (0.6, 0.0), (0.6, 1.0)]],
    "2": [[(0.1, 0.25), (0.3, 0.03), (0.7, 0.03), (0.9, 0.25), (0.8, 0.5), (0.1, 1.0),
           (0.95, 1.0)]],
    "3": [[(0.1, 0.1), (0.5, 0.0), (0.9, 0.15), (0.85, 0.4), (0.45, 0.5), (0.9, 0.62),
           (0.9, 0.88), (0.5, 1.0), (0.1, 0.9)]],
    "4": [[(0.7, 1.0), (0.7, 0.0), (0.05, 0.7), (0.95, 0.7)]],
    "5": [[(0.9, 0.0), (0.2, 0.0), *_FIVE_BODY]],
    "5-broken": [[(0.9, 0.0), (0.25, 0.0)], [(0.2, 0.25), *_FIVE_BODY]],  # bar apart from body
    "5-loose": [[(0.7, 0.02), (1.35, 0.0)],  # bar off to the right: no column in common with body
                [(0.1, 0.0), (0.05, 0.45), (0.35, 0.38), (0.55, 0.6), (0.5, 0.9), (0.3, 1.0),
                 (0.05, 0.9)]],
    "7": [[(0.05, 0.0), (0.95, 0.0), (0.4, 1.0)]],
    "7-crossed": [[(0.05, 0.0), (0.95, 0.0), (0.4, 1.0)], [(0.4, 0.52), (0.95, 0.5)]],  # Europe's
    "1-flagged": [[(0.05, 0.45), (0.6, 0.0), (0.6, 1.0)]],  # a long up-stroke
}
DIGITS = ("0", "1", "2", "3", "4", "5", "7")
Box = tuple[float, float, float, float]


def draw_digit(image: Image.Image, kind: str, box: Box, stroke: int, ink: object = 0) -> None:
    """Draw `kind` with round-capped lines of width `stroke` inside `box` (x0, y0, x1, y1)."""
    draw = ImageDraw.Draw(image)
    x0, y0, x1, y1 = box
    for line in STROKES[kind]:
        points = [(x0 + x * (x1 - x0), y0 + y * (y1 - y0)) for x, y in line]
        draw.line(points, fill=ink, width=stroke, joint="curve")
        for x, y in (points[0], points[-1]):
            r = stroke / 2
            draw.ellipse((x - r, y - r, x + r, y + r), fill=ink)


def digit_image(kind: str = "7", size: int = 200, stroke: int | None = None, ink: int = 0,
                paper: int = 255, box: Box | None = None) -> Image.Image:
    """A grayscale canvas with one digit roughly in the middle."""
    image = Image.new("L", (size, size), paper)
    box = box or (0.3 * size, 0.2 * size, 0.7 * size, 0.8 * size)
    draw_digit(image, kind, box, stroke or max(2, size // 16), ink)
    return image


def similarity(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation of two 28×28 images."""
    return float(np.corrcoef(a.numpy().ravel(), b.numpy().ravel())[0, 1])


def table_edge_photo(kind: str = "1", seed: int = 0) -> Image.Image:
    """A phone photo of a digit on beige paper with the dark edge of the table along the top."""
    rng = np.random.default_rng(seed)
    w, h = 480, 420
    image = Image.new("RGB", (w, h), (196, 188, 168))
    draw = ImageDraw.Draw(image)
    draw.polygon([(0, 0), (w, 0), (w, 48), (0, 62)], fill=(120, 112, 100))  # the table, tilted
    draw_digit(image, kind, (200, 170, 260, 330), 7, (70, 70, 70))
    pixels = np.asarray(image, dtype=np.float32)
    shade = np.linspace(1.0, 0.9, w, dtype=np.float32)[None, :, None]  # light falling off a little
    pixels = pixels * shade + rng.normal(0, 3, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.2))


def soft_scan(kind: str = "0", small: int = 12, size: int = 48, blur: float = 1.5) -> Image.Image:
    """A digit drawn thick, scanned at `small` px, blown up to `size` px and blurred: it fills
    its frame with soft, broad strokes (a low-resolution scan, a cell cut from a form)."""
    big = Image.new("L", (120, 160), 255)
    draw_digit(big, kind, (12, 10, 108, 150), 20, 40)
    low = big.resize((round(small * 0.75), small), Image.Resampling.BOX)
    up = low.resize((round(size * 0.75), size), Image.Resampling.BILINEAR)
    return up.filter(ImageFilter.GaussianBlur(blur))


def small_number(text: str = "10", height: int = 20, gap: int = 1, canvas: tuple[int, int] = (40, 28),
                 stroke: int = 3) -> Image.Image:
    """Digits `height` px tall on a small white-on-black canvas, `gap` px apart (0: touching)."""
    image = Image.new("L", canvas, 0)
    width = round(0.55 * height)
    total = len(text) * width + (len(text) - 1) * gap
    x, top = (canvas[0] - total) / 2, (canvas[1] - height) / 2
    for kind in text:
        draw_digit(image, kind, (x, top, x + width, top + height), stroke, 255)
        x += width + gap
    return image


def shadowed_photo(kind: str = "4", shade: float = 0.6, box: Box = (150, 150, 230, 290),
                   seed: int = 0) -> Image.Image:
    """A phone photo of a digit on paper, most of the picture in a hard-edged shadow (a hand or
    a phone over the sheet), only a strip on the right lit: the median pixel is shadowed paper."""
    rng = np.random.default_rng(seed)
    w, h = 400, 320
    image = Image.new("L", (w, h), 205)
    draw_digit(image, kind, box, 9, 50)
    pixels = np.asarray(image, dtype=np.float32)
    ys, xs = np.mgrid[0:h, 0:w]
    lit = xs > 0.68 * w + 0.15 * ys  # the shadow's edge runs from top to bottom, slanted
    pixels = pixels * np.where(lit, 1.0, shade) + rng.normal(0, 2.5, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.5))
