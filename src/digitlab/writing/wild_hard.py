"""The harder in-the-wild conditions: styles MNIST lacks and pictures that fool preprocessing.

- continental: sevens with a crossbar, ones with a long up-stroke flag, open fours;
- low-res: a digit cropped tight, shrunk to 8-16 px (area averaging, grey kept) and blown
  up again to 32-128 px, sometimes blurred: old scans, cells cut from a form;
- shadow: paper photos crossed by a hard shadow boundary, the sheet's edge or a table edge;
- marker: very thick, soft strokes filling the frame;
- handwriting-fonts: digits typeset in Debian's handwriting fonts, on paper or photographed;
- small-number: two or three digits 14-40 px tall on a 28-64 px canvas, sometimes touching.

Each renderer takes its own seeded generator (see digitlab.writing.wild), and the same pieces
(`add_crossbar`, `add_flag`, `open_four`, `shrink_and_blow_up`, `edge_backdrop`) also make
training digits (digitlab.writing.synthetic), from MNIST's *training* digits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from scipy import ndimage

from digitlab.writing.pages import HANDWRITTEN, blend, lighting, photo_finish, place, to_image
from digitlab.writing.strokes import MAX_PEN, redraw_with_pen, write_with_pen

CONTINENTAL_DIGITS = (1, 4, 7)
INK_LEVEL = 100  # MNIST pixels above this are ink when we look for where strokes are


# ---------------------------------------------------------------- continental styles


def add_crossbar(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 28×28 MNIST 7 with a short bar across its stem, about half-way down."""
    ink = digit > INK_LEVEL
    rows = np.flatnonzero(ink.any(axis=1))
    top, bottom = int(rows[0]), int(rows[-1])
    y = int(round(top + rng.uniform(0.45, 0.62) * (bottom - top)))
    cols = np.flatnonzero(ink[y])
    if cols.size == 0:
        return digit
    x = float(cols.mean())
    half = rng.uniform(0.28, 0.42) * (bottom - top)
    tilt = math.tan(math.radians(rng.uniform(-10, 6))) * half
    return _draw_lines(digit, [[(x - half, y + tilt), (x + half, y - tilt)]], rng)


def add_flag(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 28×28 MNIST 1 with a long up-stroke: from its top, down and to the left."""
    ink = digit > INK_LEVEL
    rows = np.flatnonzero(ink.any(axis=1))
    top, bottom = int(rows[0]), int(rows[-1])
    x = float(np.flatnonzero(ink[top]).mean())
    length = rng.uniform(0.2, 0.4) * (bottom - top)
    angle = math.radians(rng.uniform(45, 70))  # below the horizontal: steeper than a 7's bar
    end = (max(1.0, x - length * math.cos(angle)), top + length * math.sin(angle))
    return _draw_lines(digit, [[(x, top + 0.5), end]], rng)


def add_crossbars(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 28×28 MNIST 7 crossed as European writers cross it: a short bar across its stem, about
    half-way down; now and then a second bar (some writers cross twice, or bar the top as well)."""
    ink = digit > INK_LEVEL
    rows = np.flatnonzero(ink.any(axis=1))
    top, bottom = int(rows[0]), int(rows[-1])
    bars = []
    for where in [rng.uniform(0.45, 0.62)] + ([rng.uniform(0.3, 0.75)] if rng.random() < 0.15 else []):
        y = int(round(top + where * (bottom - top)))
        cols = np.flatnonzero(ink[y])
        if cols.size == 0:
            continue
        x = float(cols.mean())
        half = rng.uniform(0.28, 0.42) * (bottom - top)
        tilt = math.tan(math.radians(rng.uniform(-10, 6))) * half
        bars.append([(x - half, y + tilt), (x + half, y - tilt)])
    return _draw_lines(digit, bars, rng) if bars else digit


def add_european_flag(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 28×28 MNIST 1 the continental way: a long up-stroke from its top, down and to the left
    (as long as half the digit, at 25-70° below the horizontal: never the level bar of a 7),
    sometimes a base serif; now and then the up-stroke is as long as the stem (a Λ-like 1)."""
    ink = digit > INK_LEVEL
    rows = np.flatnonzero(ink.any(axis=1))
    top, bottom = int(rows[0]), int(rows[-1])
    x = float(np.flatnonzero(ink[top]).mean())
    foot_x = float(np.flatnonzero(ink[bottom]).mean())
    # the stem's own angle below the horizontal (90°: upright; less: leaning right); the flag
    # leaves it at least 20° flatter, or it would only thicken a slanted stem
    stem = math.degrees(math.atan2(bottom - top, x - foot_x))
    steepest = min(70.0, stem - 20)
    if rng.random() < 0.12 and steepest > 50:  # the bare up-stroke and stem
        length, angle = rng.uniform(0.5, 0.8) * (bottom - top), rng.uniform(50, steepest)
    else:
        length, angle = rng.uniform(0.22, 0.55) * (bottom - top), rng.uniform(28, max(steepest, 35))
    angle = math.radians(angle)
    end = (max(1.0, x - length * math.cos(angle)), top + length * math.sin(angle))
    lines = [[(x, top + 0.5), end]]
    if rng.random() < 0.2:  # a foot: a short level stroke across the bottom of the stem
        half = rng.uniform(0.12, 0.22) * (bottom - top)
        lines.append([(foot_x - half, bottom - 0.5), (foot_x + half, bottom - 0.5)])
    return _draw_lines(digit, lines, rng)


def open_four(rng: np.random.Generator) -> np.ndarray:
    """A 28×28 four whose two strokes do not meet at the top: a hook and a separate upright."""
    top, bottom = rng.uniform(3.5, 5.5), rng.uniform(22.5, 24.5)
    bar = rng.uniform(0.55, 0.72) * (bottom - top) + top
    left = rng.uniform(5, 8)
    hook = [(left + rng.uniform(1, 5), top + rng.uniform(0, 2)), (left, bar),
            (rng.uniform(20, 23.5), bar + rng.uniform(-1.5, 0.5))]
    upright_x = rng.uniform(14, 18)
    lean = rng.uniform(-2.5, 1.5)
    upright = [(upright_x, top + rng.uniform(0, 3)), (upright_x + lean, bottom)]
    return _draw_lines(np.zeros((28, 28), np.uint8), [hook, upright], rng)


def _draw_lines(digit: np.ndarray, lines: list[list[tuple[float, float]]],
                rng: np.random.Generator) -> np.ndarray:
    """Polylines drawn into a copy of a 28×28 digit as MNIST-like soft 2-3 px strokes."""
    big = Image.fromarray(digit).resize((112, 112), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(big)
    width = int(rng.integers(8, 12))  # 2-3 MNIST pixels
    for line in lines:
        draw.line([(4 * x, 4 * y) for x, y in line], fill=255, width=width, joint="curve")
    small = big.resize((28, 28), Image.Resampling.BOX).filter(ImageFilter.GaussianBlur(0.4))
    return np.maximum(np.asarray(small), digit if lines and digit.any() else 0).astype(np.uint8)


Stroke = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _forms(digit: np.ndarray, label: int, rng: np.random.Generator, seven: Stroke,
           one: Stroke) -> np.ndarray:
    if label == 7:
        return seven(digit, rng)
    if label == 1:
        return one(digit, rng)
    if label == 4:
        return open_four(rng)
    return digit


def continental_digit(digit: np.ndarray, label: int, rng: np.random.Generator) -> np.ndarray:
    """The continental form of an MNIST 1, 4 or 7 (28×28 uint8); other digits unchanged: the
    in-the-wild benchmark's and the line reader's (kept as they were measured and trained)."""
    return _forms(digit, label, rng, add_crossbar, add_flag)


def european_digit(digit: np.ndarray, label: int, rng: np.random.Generator) -> np.ndarray:
    """A 1, 4 or 7 the way European writers make them, in the spread of shapes real forms show
    (long flags at the stem's own angle, Λ-like ones, feet, sevens crossed twice): the robust
    recipe's training digits (digitlab.writing.synthetic)."""
    return _forms(digit, label, rng, add_crossbars, add_european_flag)


def _continental(rng: np.random.Generator, digit: np.ndarray, label: int,
                 shape: Callable[[np.ndarray, int, np.random.Generator], np.ndarray] = continental_digit,
                 ) -> Image.Image:
    look = ("canvas", "paper", "photo")[int(rng.integers(3))]
    return HANDWRITTEN[look](rng, shape(digit, label, rng))


def european_page(rng: np.random.Generator, digit: np.ndarray, label: int) -> Image.Image:
    """A European-hand 1, 4 or 7 on a canvas, paper or a photo (`european_digit`)."""
    return _continental(rng, digit, label, european_digit)


# ---------------------------------------------------------------- low resolution


def shrink_and_blow_up(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ink coverage (0..1) cropped tight → longer side 8-16 px by area averaging → 32-128 px.

    The result fills its frame; sometimes blurred, as a scanner or a phone crop would.
    """
    h, w = ink.shape
    pad = [int(round(rng.uniform(0, 0.08) * max(h, w))) for _ in range(4)]
    ink = np.pad(ink, ((pad[0], pad[1]), (pad[2], pad[3])))
    h, w = ink.shape
    small_side = int(rng.integers(8, 17))
    factor = small_side / max(h, w)
    small = Image.fromarray(ink.astype(np.float32)).resize(
        (max(1, round(w * factor)), max(1, round(h * factor))), Image.Resampling.BOX)
    big_side = int(rng.integers(32, 129))
    up = big_side / small_side
    resample = (Image.Resampling.BILINEAR, Image.Resampling.BICUBIC,
                Image.Resampling.NEAREST)[int(rng.choice(3, p=[0.45, 0.45, 0.1]))]
    big = small.resize((max(1, round(small.width * up)), max(1, round(small.height * up))), resample)
    out = np.asarray(big, dtype=np.float32)
    if rng.random() < 0.4:
        out = ndimage.gaussian_filter(out, rng.uniform(0.15, 0.45) * up)
    return np.clip(out, 0, 1)


def _low_res(rng: np.random.Generator, digit: np.ndarray, label: int) -> Image.Image:
    ink = write_with_pen(digit, rng, 100, 100 * rng.uniform(0.08, 0.16), 8, 0.2)
    ink = shrink_and_blow_up(ink, rng)
    paper, dark = rng.uniform(190, 255), rng.uniform(0, 90)
    page = paper + (dark - paper) * ink
    return Image.fromarray(np.clip(np.round(page), 0, 255).astype(np.uint8))


# ---------------------------------------------------------------- shadows and edges


def edge_backdrop(rng: np.random.Generator, h: int, w: int, free: tuple[int, int, int, int],
                  kind: str) -> np.ndarray:
    """A brightness factor for an h×w page: 1 on the paper, less (or more) in shadow or beyond.

    `kind` is "shadow" (a hard shadow boundary anywhere, crossing the ink or not), "sheet"
    or "table" (a straight edge inside `free`, the margins (top, bottom, left, right) in
    pixels that hold no ink, beyond which lies the table, with streaks of grain). The page is
    photographed: paper fills most of the frame, the table at most about a third of it.
    """
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    softness = rng.uniform(0.5, 3.0)
    if kind == "shadow":
        angle = rng.uniform(0, 2 * np.pi)
        nx, ny = math.cos(angle), math.sin(angle)
        span = abs(nx) * w + abs(ny) * h
        # the shade covers 10-50% of the page: a hand's or a phone's, not the whole scene
        beyond = _step((xs - w / 2) * nx + (ys - h / 2) * ny + span * rng.uniform(-0.4, 0.0), softness)
        return (1 + (rng.uniform(0.45, 0.75) - 1) * beyond).astype(np.float32)
    side = int(np.argmax(np.asarray(free) * rng.uniform(0.8, 1.0, size=4)))
    length = w if side < 2 else h
    along = xs if side < 2 else ys
    inward = (ys, h - 1 - ys, xs, w - 1 - xs)[side]  # distance from that side of the page
    depth = rng.uniform(0.3, 0.85) * min(free[side], 0.35 * (h if side < 2 else w))
    slope = rng.uniform(-1, 1) * min(0.15, 0.3 * free[side] / length)
    beyond = _step(depth + slope * (along - length / 2) - inward, softness)
    darker = kind == "table" or rng.random() < 0.7
    level = rng.uniform(0.25, 0.7) if darker else rng.uniform(1.1, 1.3)
    grain = ndimage.uniform_filter1d(rng.normal(0, 0.04, size=length), 5).astype(np.float32)
    streaks = grain[None, :] if side < 2 else grain[:, None]
    return ((1 + (level - 1) * beyond) * (1 + beyond * streaks)).astype(np.float32)


def _step(distance: np.ndarray, softness: float) -> np.ndarray:
    """0 on one side of a boundary, 1 on the other, a logistic ramp `softness` px wide."""
    return 1 / (1 + np.exp(-np.clip(distance / softness, -50, 50)))


def _shadow(rng: np.random.Generator, digit: np.ndarray, label: int) -> Image.Image:
    """A phone photo of paper (as wild's photo) crossed by a shadow, the sheet's or a table's edge."""
    w, h = (int(v) for v in rng.integers(320, 801, size=2))
    height = h * rng.uniform(0.25, 0.6)
    alpha = write_with_pen(digit, rng, height, height * rng.uniform(0.05, 0.1), 10, 0.2, max_width=0.7 * w)
    paper = rng.uniform(160, 225) * (1 + rng.uniform(-0.06, 0.06, size=3))
    page = np.empty((h, w, 3), np.float32)
    page[:] = paper
    top = int(rng.integers(0, h - alpha.shape[0] + 1))
    left = int(rng.integers(0, w - alpha.shape[1] + 1))
    blend(page, alpha, top, left, (rng.uniform(25, 70),) * 3)
    free = (top, h - top - alpha.shape[0], left, w - left - alpha.shape[1])
    kind = ("shadow", "sheet", "table")[int(rng.integers(3))]
    if kind != "shadow" and max(free) < 0.08 * min(h, w):
        kind = "shadow"  # the digit fills the page: no room for an edge beside it
    page *= edge_backdrop(rng, h, w, free, kind)[..., None]
    page *= lighting(rng, h, w)[..., None] ** 0.5
    return photo_finish(rng, page)


# ---------------------------------------------------------------- marker


MARKER_INKS = ((15, 15, 20), (20, 40, 150), (170, 25, 30), (20, 110, 50), (60, 60, 60))


def _marker(rng: np.random.Generator, digit: np.ndarray, label: int) -> Image.Image:
    """A felt-tip or marker digit, strokes up to a seventh of its height, filling the frame."""
    height = rng.uniform(60, 300)
    alpha = write_with_pen(digit, rng, height, height / MAX_PEN * rng.uniform(0.75, 1.0), 8, 0.2)
    pad = [int(round(rng.uniform(0.0, 0.1) * height)) for _ in range(4)]
    alpha = np.pad(alpha, ((pad[0], pad[1]), (pad[2], pad[3])))
    ink = np.asarray(MARKER_INKS[int(rng.integers(len(MARKER_INKS)))], np.float32)
    page = np.empty((*alpha.shape, 3), np.float32)
    page[:] = rng.uniform(215, 255)
    blend(page, alpha, 0, 0, ink * rng.uniform(0.8, 1.2))
    if rng.random() < 0.5:
        return photo_finish(rng, page * lighting(rng, *alpha.shape)[..., None] ** 0.5)
    return to_image(page).filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.0) * height / 100))


# ---------------------------------------------------------------- handwriting fonts


def glyph_mask(path: Path, digit: int, height: float, rng: np.random.Generator) -> np.ndarray:
    """A font's digit as ink coverage (0..1) about `height` px tall, turned a few degrees."""
    size = max(8, int(round(height * 1.4)))
    font = ImageFont.truetype(str(path), size)
    left, top, right, bottom = font.getbbox(str(digit))
    canvas = Image.new("L", (int(right - left) + size // 2, int(bottom - top) + size // 2), 0)
    ImageDraw.Draw(canvas).text((size // 4 - left, size // 4 - top), str(digit), font=font, fill=255)
    canvas = canvas.rotate(float(rng.uniform(-6, 6)), Image.Resampling.BICUBIC, expand=True)
    box = canvas.getbbox()
    assert box is not None  # handwriting_fonts() only lists fonts with ten visible digits
    ink = np.asarray(canvas.crop(box), dtype=np.float32) / 255
    scale = height / ink.shape[0]
    return np.asarray(Image.fromarray(ink).resize(
        (max(1, round(ink.shape[1] * scale)), max(1, round(height))), Image.Resampling.BILINEAR))


def font_on_paper(rng: np.random.Generator, path: Path, digit: int) -> Image.Image:
    """A handwriting-font digit as a scan of ink on paper, or as a phone photo of it."""
    photo = rng.random() < 0.5
    w, h = (int(v) for v in rng.integers(240, 721, size=2))
    alpha = glyph_mask(path, digit, h * rng.uniform(0.25, 0.7), rng)
    if alpha.shape[1] > 0.95 * w:
        w = int(alpha.shape[1] / 0.9)
    if photo:
        page = np.empty((h, w, 3), np.float32)
        page[:] = rng.uniform(160, 215) * (1 + rng.uniform(-0.06, 0.06, size=3))
        place(rng, page, np.clip(alpha, 0, 1), (rng.uniform(25, 70),) * 3)
        return photo_finish(rng, page * lighting(rng, h, w)[..., None])
    page = np.full((h, w, 3), rng.uniform(238, 255), np.float32)
    ink: Any = (20, 30, rng.uniform(80, 120)) if rng.random() < 0.4 else (rng.uniform(10, 50),) * 3
    place(rng, page, np.clip(alpha, 0, 1), ink)
    return to_image(page).filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 0.7)))


# ---------------------------------------------------------------- small numbers


def small_number(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray
                 ) -> tuple[Image.Image, str, bool, str]:
    """2-3 digits 14-40 px tall on a 28-64 px high canvas; neighbours sometimes touch.

    Returns the image, the label, whether two digits' ink touches, and the MNIST indices.
    """
    n = int(rng.integers(2, 4))
    picks = rng.choice(len(images), size=n)
    h0 = rng.uniform(14, 40)
    pen = max(1.5, h0 * rng.uniform(0.09, 0.16))
    tilt, slant = rng.uniform(-5, 5), rng.uniform(-0.15, 0.15)
    # Not write_with_pen: one pen for the whole number, capped at a fifth of its height (small
    # digits are written with a relatively broad pen), and the writer's slant, not one per digit.
    masks = [redraw_with_pen(images[k], h0 * rng.uniform(0.9, 1.1), min(pen, h0 / 5),
                             tilt + rng.uniform(-3, 3), slant) for k in picks]
    gaps = [int(rng.integers(-1, max(1, round(0.3 * h0)) + 1)) for _ in range(n - 1)]
    width = sum(m.shape[1] for m in masks) + sum(gaps)
    tallest = max(m.shape[0] for m in masks)
    page_h = int(min(64, max(28, tallest + rng.integers(2, max(3, round(0.5 * h0)) + 1))))
    page_w = max(28, width + int(rng.integers(2, max(3, round(0.5 * h0)) + 1)))
    canvas_look = rng.random() < 0.6
    paper = (255.0 if rng.random() < 0.5 else 0.0) if canvas_look else rng.uniform(225, 255)
    ink = 255.0 - paper if canvas_look else rng.uniform(0, 60)
    coverage = np.zeros((page_h, page_w), np.float32)
    x = int(rng.integers(0, page_w - width + 1))
    touching = False
    for i, mask in enumerate(masks):
        top = int(np.clip((page_h - mask.shape[0]) / 2 + rng.uniform(-0.06, 0.06) * h0,
                          0, page_h - mask.shape[0]))
        region = coverage[top : top + mask.shape[0], x : x + mask.shape[1]]
        touching |= bool(((region > 0.3) & (mask > 0.3)).any()) or (i > 0 and gaps[i - 1] <= 0)
        np.maximum(region, mask, out=region)
        x += mask.shape[1] + (gaps[i] if i < n - 1 else 0)
    page = paper + (ink - paper) * coverage
    label = "".join(str(int(labels[k])) for k in picks)
    image = Image.fromarray(np.clip(np.round(page), 0, 255).astype(np.uint8))
    return image, label, touching, "mnist:" + ",".join(str(int(k)) for k in picks)


RENDERERS = {"continental": _continental, "low-res": _low_res, "shadow": _shadow,
             "marker": _marker}
