"""Pages a digit is written on: a mouse/touch canvas, ink on paper, a phone photo, a thin-pen
scan, and the pieces they are made of (laying ink, uneven light, a phone's finish).

The in-the-wild benchmark's conditions (writing.wild, writing.wild_hard) draw on them. Each
function takes its generator from its caller, so the same seed gives the same pixels.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from digitlab.writing.strokes import write_with_pen

CANVAS_SIZES = ((280, 280), (400, 250), (300, 500), (500, 400), (360, 240))


def blend(page: np.ndarray, alpha: np.ndarray, top: int, left: int, ink: Any) -> None:
    """Lay ink of colour `ink` with coverage `alpha` onto `page` (H×W×C floats), in place."""
    region = page[top : top + alpha.shape[0], left : left + alpha.shape[1]]
    a = alpha[..., None]
    region[:] = region * (1 - a) + np.asarray(ink, dtype=np.float32) * a


def place(rng: np.random.Generator, page: np.ndarray, alpha: np.ndarray, ink: Any) -> None:
    """Blend `alpha` at a random position where it fits whole (often off-centre)."""
    top = int(rng.integers(0, page.shape[0] - alpha.shape[0] + 1))
    left = int(rng.integers(0, page.shape[1] - alpha.shape[1] + 1))
    blend(page, alpha, top, left, ink)


def to_image(page: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.round(page), 0, 255).astype(np.uint8))


def pen_on_page(
    rng: np.random.Generator, digit: np.ndarray, size: tuple[int, int],
    fraction: tuple[float, float], tilt: float, width: float = 0.0, relative: float = 0.0,
) -> np.ndarray:
    """A pen mask whose ink is `fraction` of the page height and fits the page width.

    The pen is `width` pixels wide, or else `relative` times the ink height.
    """
    w, h = size
    height = h * rng.uniform(*fraction)
    return write_with_pen(digit, rng, height, width or relative * height, tilt, 0.2, max_width=0.95 * w)


def photo_finish(rng: np.random.Generator, page: np.ndarray, noise: tuple[float, float] = (2, 7),
                 blur: tuple[float, float] = (0.4, 1.1), quality: tuple[int, int] = (60, 90)) -> Image.Image:
    """Sensor noise, a little blur and a JPEG round trip: what a phone makes of a page (H×W×C
    floats); each drawn from its range."""
    page = page + rng.normal(0, rng.uniform(*noise), size=page.shape).astype(np.float32)
    soft = to_image(page).filter(ImageFilter.GaussianBlur(rng.uniform(*blur)))
    buffer = io.BytesIO()
    soft.save(buffer, format="JPEG", quality=int(rng.integers(*quality)))
    decoded = Image.open(io.BytesIO(buffer.getvalue()))
    decoded.load()
    return decoded


# ---------------------------------------------------------------- the four handwritten looks


def _canvas(rng: np.random.Generator, digit: np.ndarray) -> Image.Image:
    """A mouse/touch canvas: thick strokes, black/white or transparent, anywhere on it."""
    w, h = CANVAS_SIZES[int(rng.integers(len(CANVAS_SIZES)))]
    alpha = pen_on_page(rng, digit, (w, h), (0.22, 0.88), 5, width=rng.uniform(6, 20))
    scheme = rng.choice(["white-on-black", "black-on-white", "transparent"])
    if scheme == "transparent":  # a web canvas's toDataURL(): clear background, opaque ink
        page = np.zeros((h, w, 1), np.float32)
        place(rng, page, alpha, 255.0)
        ink = np.zeros((h, w, 3), np.float32) + (255.0 if rng.random() < 0.2 else 0.0)
        return to_image(np.concatenate([ink, page], axis=2))
    light = 255.0 if scheme == "black-on-white" else 0.0
    page = np.full((h, w, 3), light, np.float32)
    place(rng, page, alpha, 255.0 - light)
    return to_image(page)


def _paper(rng: np.random.Generator, digit: np.ndarray) -> Image.Image:
    """Dark or blue-black ink on white paper, scanned: moderate pen, a little rotation."""
    w, h = (int(v) for v in rng.integers(240, 721, size=2))
    alpha = pen_on_page(rng, digit, (w, h), (0.3, 0.8), 10, relative=rng.uniform(0.05, 0.1))
    page = np.full((h, w, 3), rng.uniform(238, 255), np.float32)
    blue_black = rng.random() < 0.4
    ink = (20, 30, rng.uniform(80, 120)) if blue_black else (rng.uniform(10, 50),) * 3
    place(rng, page, alpha, ink)
    return to_image(page).filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 0.7)))


def lighting(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A brightness factor falling by 30-40% across the image, linearly or radially."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.random() < 0.5:
        t = rng.uniform(0, 2 * np.pi)
        g = xs * np.cos(t) + ys * np.sin(t)
    else:
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        g = np.hypot(ys - cy, xs - cx)
    g = (g - g.min()) / max(float(g.max() - g.min()), 1e-6)
    return 1.0 - rng.uniform(0.3, 0.4) * g


def _photo(rng: np.random.Generator, digit: np.ndarray) -> Image.Image:
    """A phone photo of paper: grey, unevenly lit, colour cast, noisy, soft, JPEG-compressed."""
    w, h = (int(v) for v in rng.integers(320, 801, size=2))
    alpha = pen_on_page(rng, digit, (w, h), (0.25, 0.7), 10, relative=rng.uniform(0.05, 0.1))
    paper = rng.uniform(160, 215) * (1 + rng.uniform(-0.06, 0.06, size=3))
    page = np.empty((h, w, 3), np.float32)
    page[:] = paper
    place(rng, page, alpha, (rng.uniform(25, 70),) * 3)
    page *= lighting(rng, h, w)[..., None]
    return photo_finish(rng, page, noise=(3, 8), blur=(0.5, 1.2), quality=(60, 86))


def _thin_pen(rng: np.random.Generator, digit: np.ndarray) -> Image.Image:
    """A stylus or fine pen on a large, high-resolution canvas: 1-3 px strokes."""
    w, h = (int(v) for v in rng.integers(800, 1201, size=2))
    alpha = pen_on_page(rng, digit, (w, h), (0.2, 0.8), 6, width=rng.uniform(1, 3))
    page = np.full((h, w, 3), rng.uniform(230, 255), np.float32)
    place(rng, page, alpha, (rng.uniform(0, 60),) * 3)
    return to_image(page)


HANDWRITTEN = {"canvas": _canvas, "paper": _paper, "photo": _photo, "thin-pen": _thin_pen}


