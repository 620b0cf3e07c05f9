"""Synthetic number fields for the line reader: strings of 1-8 handwritten digits on paper.

Real amounts, meter readings and form fields are not clean digits on white: the paper is
textured (a cheque's guilloche), ruled or squared, a printed baseline or box edge runs under
or through the writing, a dash, full stop or thousands separator sits among the digits, and
neighbours touch or overlap. Every line here is composed from *training* digits (MNIST's
training split, re-styled the continental way, and handwriting fonts) with all of that, then
scanned or photographed at 20-70 px high. The label holds the digits only.

The ranges live in `LineStyle` (one documented place); `render_line` draws one field.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from digitlab.reading.measures import crop, ink_box
from digitlab.writing import wild_hard
from digitlab.writing.fonts import handwriting_fonts


@dataclass(frozen=True)
class LineStyle:
    """The ranges a synthetic field is drawn from. Heights are in pixels of the working page,
    where digits are `digit_height` tall before the final scan shrinks the field."""

    digit_height: int = 40  # working size: big enough that a 1-px pen stroke still shows
    lengths: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)  # how many digits, drawn with...
    length_weights: tuple[float, ...] = (1, 2, 4, 6, 6, 4, 2, 1)  # ...amounts' usual lengths
    gap: tuple[float, float] = (-0.22, 0.45)  # space between digits, share of digit height
    # (below 0: neighbours touch or overlap, as in "1000" written in one run)
    size_jitter: tuple[float, float] = (0.8, 1.12)  # one digit's height against its writer's
    baseline_jitter: float = 0.08  # share of the height a digit sits above or below the line
    slant: tuple[float, float] = (-0.45, 0.35)  # horizontal shear of the whole field
    width_jitter: tuple[float, float] = (0.75, 1.3)  # narrow and wide writers
    thin: tuple[float, float] = (0.0, 0.65)  # MNIST's grey level cut away: a ball-point's thin line
    fill: tuple[float, float] = (0.45, 0.9)  # share of the field's height the digits take
    margin: tuple[float, float] = (0.0, 0.7)  # left and right margins, share of the height
    continental: float = 0.5  # share of ones flagged, sevens crossed, fours open (cheques,
    # forms and most of Europe and Latin America write them so)
    small_zeros: float = 0.35  # share of round amounts whose trailing zeros are written smaller,
    small_zero_size: tuple[float, float] = (0.45, 0.85)  # this share of the digits' height
    font_share: float = 0.15  # share of digits from handwriting fonts (when installed)
    separators: float = 0.3  # share of fields of 4+ digits with thousands separators
    trailing: float = 0.35  # share of fields that end in a dash, full stop or comma
    leading: float = 0.08  # share of fields that start with a dash or '=' (a "from here" mark)
    scan_height: tuple[int, int] = (20, 72)  # the field's final height in pixels
    jpeg: float = 0.5  # share of fields saved as JPEG (quality 30-95)
    light_on_dark: float = 0.05  # share of fields written light on dark (a canvas)
    blank: float = 0.03  # share of fields with no digit (paper, perhaps a dash): "no digit"
    baseline: float = 0.5  # share of fields with a printed line under (or through) the writing


STYLE = LineStyle()


@dataclass
class GlyphBank:
    """Where digits come from: MNIST training digits (uint8 N×28×28) and their labels, and
    handwriting fonts rendered once (ink coverage per digit)."""

    images: np.ndarray
    labels: np.ndarray
    fonts: list[list[np.ndarray]]  # fonts[f][d]: digit d of font f, coverage 0..1

    @classmethod
    def build(cls, images: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> GlyphBank:
        fonts = [[wild_hard.glyph_mask(path, d, 48, rng) for d in range(10)]
                 for path in handwriting_fonts()]
        return cls(images, labels, fonts)


def _mnist_glyph(bank: GlyphBank, digit: int, rng: np.random.Generator, style: LineStyle) -> np.ndarray:
    """A training digit of class `digit` as ink coverage 0..1, cropped to its ink."""
    choices = np.flatnonzero(bank.labels == digit)
    picture = bank.images[int(rng.choice(choices))]
    if digit in (1, 4, 7) and rng.random() < style.continental:
        picture = wild_hard.continental_digit(picture, digit, rng)
    ink = picture.astype(np.float32) / 255
    cut = rng.uniform(*style.thin)  # a thinner pen: keep only the stroke's core
    ink = np.clip((ink - cut) / (1 - cut), 0, 1)
    if rng.random() < 0.2:  # a broad pen
        ink = ndimage.grey_dilation(ink, size=(2, 2))
    return _crop(ink)


def _crop(ink: np.ndarray) -> np.ndarray:
    box = ink_box(ink, 0.02)  # coverage above 2%: the faint rim of a stroke still counts
    return np.zeros((1, 1), np.float32) if box is None else crop(ink, box)


def _glyph(bank: GlyphBank, digit: int, height: float, width_scale: float,
           rng: np.random.Generator, style: LineStyle) -> np.ndarray:
    """Digit `digit` `height` px tall, as ink coverage."""
    if bank.fonts and rng.random() < style.font_share:
        ink = bank.fonts[int(rng.integers(len(bank.fonts)))][digit]
    else:
        ink = _mnist_glyph(bank, digit, rng, style)
    h, w = ink.shape
    scale = height / h
    size = (max(1, round(w * scale * width_scale)), max(1, round(height)))
    return np.asarray(Image.fromarray(ink).resize(size, Image.Resampling.BILINEAR))


def _digits_of(rng: np.random.Generator, style: LineStyle) -> list[int]:
    weights = np.asarray(style.length_weights, dtype=np.float64)
    n = int(rng.choice(style.lengths, p=weights / weights.sum()))
    digits = [int(d) for d in rng.integers(0, 10, size=n)]
    if n > 1 and digits[0] == 0 and rng.random() < 0.8:  # amounts rarely start with 0
        digits[0] = int(rng.integers(1, 10))
    if n >= 3 and rng.random() < 0.35:  # round amounts: trailing zeros written in one run
        k = int(rng.integers(1, n))
        digits[n - k :] = [0] * k
    return digits


def _mark(kind: str, h: float, pen: float, rng: np.random.Generator) -> np.ndarray:
    """A mark that is not a digit, as ink coverage: '.', ',', '-' or '='."""
    w = {".": 0.25, ",": 0.25, "-": 0.5, "=": 0.5}[kind] * h * rng.uniform(0.7, 1.4)
    canvas = Image.new("L", (max(3, round(w + 2 * pen)), max(3, round(h))), 0)
    draw, p = ImageDraw.Draw(canvas), max(1, round(pen))
    if kind == ".":
        y = h * rng.uniform(0.75, 0.95)
        draw.ellipse([pen, y - pen, 2 * pen + p, y + p * 0.8], fill=255)
    elif kind == ",":
        y = h * rng.uniform(0.75, 0.9)
        draw.line([(pen + w * 0.5, y), (pen, min(h - 1, y + 0.25 * h))], fill=255, width=p)
    else:
        y = h * rng.uniform(0.4, 0.6)
        draw.line([(pen, y), (pen + w, y + rng.uniform(-0.1, 0.1) * h)], fill=255, width=p)
        if kind == "=":
            draw.line([(pen, y + 0.2 * h), (pen + w, y + 0.2 * h)], fill=255, width=p)
    return np.asarray(canvas, dtype=np.float32) / 255


def _pieces(digits: list[int], bank: GlyphBank, rng: np.random.Generator,
            style: LineStyle) -> list[tuple[np.ndarray, bool]]:
    """The field's marks left to right: (ink, is a digit). Separators and dashes included."""
    h0 = style.digit_height
    width_scale = rng.uniform(*style.width_jitter)
    pen = max(1.0, h0 * rng.uniform(0.04, 0.1))
    n = len(digits)
    pieces: list[tuple[np.ndarray, bool]] = []
    if rng.random() < style.leading:
        # never a slash: a leading 1 written as one stroke looks just like it
        pieces.append((_mark(str(rng.choice(["-", "="])), h0, pen, rng), False))
    separate = n >= 4 and rng.random() < style.separators
    sep = str(rng.choice([".", ","]))
    trailing_zeros = n - len("".join(map(str, digits)).rstrip("0"))
    small = trailing_zeros >= 2 and rng.random() < style.small_zeros
    shrink = rng.uniform(*style.small_zero_size) if small else 1.0
    for i, d in enumerate(digits):
        height = h0 * rng.uniform(*style.size_jitter) * (shrink if i >= n - trailing_zeros else 1)
        pieces.append((_glyph(bank, d, height, width_scale, rng, style), True))
        left = n - 1 - i
        if separate and left > 0 and left % 3 == 0:
            pieces.append((_mark(sep, h0, pen, rng), False))
    if rng.random() < style.trailing or not pieces:
        pieces.append((_mark(str(rng.choice(["-", ".", ",", "="])), h0, pen, rng), False))
    return pieces


def _compose(pieces: list[tuple[np.ndarray, bool]], rng: np.random.Generator,
             style: LineStyle) -> np.ndarray:
    """The pieces on one line of ink coverage, with gaps (or overlaps) and baseline jitter."""
    h0 = style.digit_height
    page_h = int(h0 / rng.uniform(*style.fill))
    margins = [int(m * page_h) for m in rng.uniform(*style.margin, size=2)]
    gaps = [int(round(h0 * rng.uniform(*style.gap))) if digit else int(h0 * rng.uniform(0.0, 0.2))
            for _, digit in pieces]
    width = margins[0] + margins[1] + sum(p.shape[1] for p, _ in pieces) + sum(gaps[1:])
    if not any(digit for _, digit in pieces):  # a blank field is as wide as a written one
        width = max(width, int(rng.uniform(1.5, 6) * page_h))
    slant = rng.uniform(*style.slant)
    extra = int(abs(slant) * page_h) + 2
    line = np.zeros((page_h, max(width, 1) + 2 * extra), np.float32)
    middle = (page_h - h0) / 2 + rng.uniform(-0.4, 0.4) * (page_h - h0) / 2
    x = margins[0] + extra
    for i, (ink, _) in enumerate(pieces):
        x = max(0, x + (gaps[i] if i else 0))
        top = middle + (h0 - ink.shape[0]) / 2 + rng.uniform(-1, 1) * style.baseline_jitter * h0
        if ink.shape[0] < h0 * 0.7 and not pieces[i][1]:  # marks keep their own vertical place
            top = middle
        top = int(np.clip(round(top), 0, max(0, page_h - ink.shape[0])))
        region = line[top : top + ink.shape[0], x : x + ink.shape[1]]
        np.maximum(region, ink[: region.shape[0], : region.shape[1]], out=region)
        x += ink.shape[1]
    return _shear(line, slant)


def _shear(line: np.ndarray, slant: float) -> np.ndarray:
    h = line.shape[0]
    image = Image.fromarray(line)
    sheared = image.transform(image.size, Image.Transform.AFFINE, (1, slant, -slant * h / 2, 0, 1, 0),
                              resample=Image.Resampling.BILINEAR)
    ink = np.asarray(sheared)
    cols = np.flatnonzero(ink.max(axis=0) > 0.05)
    if cols.size == 0 or cols[-1] - cols[0] < h:  # nothing, or a mark alone: the field stays wide
        return ink
    pad = int(h * 0.05)
    return ink[:, max(0, cols[0] - pad) : cols[-1] + 1 + pad]


def paper_texture(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Paper: a level, and sometimes guilloche, ruled or squared lines or blotches (0..1 dark)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dark = np.zeros((h, w), np.float32)
    kind = rng.choice(["plain", "guilloche", "guilloche", "ruled", "squared", "speckle"])
    if kind == "guilloche":
        for _ in range(int(rng.integers(1, 4))):
            angle, period = rng.uniform(0, math.pi), rng.uniform(3, 14)
            wave = rng.uniform(0, 6) * np.sin(xx / rng.uniform(8, 40) + rng.uniform(0, 6))
            phase = (xx * math.cos(angle) + yy * math.sin(angle) + wave) / period
            lines = np.abs(np.sin(math.pi * phase)) ** rng.uniform(4, 30)
            dark = np.maximum(dark, lines * rng.uniform(0.08, 0.35))
    elif kind in ("ruled", "squared"):
        period = rng.uniform(8, 22)
        lines = (np.mod(yy + rng.uniform(0, period), period) < rng.uniform(0.8, 1.8)).astype(np.float32)
        if kind == "squared":
            lines = np.maximum(lines, np.mod(xx + rng.uniform(0, period), period) < 1.2)
        dark = lines * rng.uniform(0.1, 0.4)
    elif kind == "speckle":
        noise = ndimage.gaussian_filter(rng.standard_normal((h, w)).astype(np.float32), rng.uniform(1, 4))
        dark = np.clip(noise * rng.uniform(0.1, 0.4), 0, 1)
    return dark


def _rules(h: int, w: int, ink: np.ndarray, rng: np.random.Generator, baseline: float) -> np.ndarray:
    """Printed lines of the form: a baseline under (or through) the writing, box edges."""
    rules = np.zeros((h, w), np.float32)
    rows = np.flatnonzero(ink.max(axis=1) > 0.3)
    bottom = int(rows[-1]) if rows.size else h - 1
    thickness = int(rng.integers(1, max(2, h // 25) + 1))
    if rng.random() < baseline:
        y = int(np.clip(bottom + rng.integers(-h // 8, h // 6 + 1), 0, h - thickness))
        rules[y : y + thickness] = 1
    for edge in ("top", "bottom", "left", "right"):  # the field's box, each edge now and then
        if rng.random() < 0.12:
            t = int(rng.integers(1, 3))
            if edge == "top":
                rules[:t] = 1
            elif edge == "bottom":
                rules[h - t :] = 1
            elif edge == "left":
                rules[:, :t] = 1
            else:
                rules[:, w - t :] = 1
    return rules * rng.uniform(0.3, 1.0)


def _scan(page: np.ndarray, rng: np.random.Generator, style: LineStyle) -> Image.Image:
    """The page (0..1 brightness) scanned or photographed: light, blur, noise, size, JPEG."""
    h, w = page.shape
    if rng.random() < 0.4:  # uneven light
        gradient = np.linspace(rng.uniform(0.75, 1), rng.uniform(0.75, 1), w, dtype=np.float32)
        page = page * gradient[None, :]
    if rng.random() < 0.6:
        page = ndimage.gaussian_filter(page, rng.uniform(0.3, 1.3))
    page = page + rng.standard_normal(page.shape).astype(np.float32) * rng.uniform(0, 0.05)
    image = Image.fromarray(np.clip(page * 255, 0, 255).astype(np.uint8))
    target = int(rng.integers(*style.scan_height))
    size = (max(4, round(w * target / h)), target)
    image = image.resize(size, Image.Resampling.BOX if target < h else Image.Resampling.BILINEAR)
    if rng.random() < style.jpeg:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=int(rng.integers(30, 96)))
        image = Image.open(io.BytesIO(buffer.getvalue()))
    return image


def render_line(bank: GlyphBank, rng: np.random.Generator, style: LineStyle = STYLE,
                digits: list[int] | None = None) -> tuple[Image.Image, str]:
    """One synthetic number field (a grey PIL image) and its digits."""
    if digits is None:
        digits = [] if rng.random() < style.blank else _digits_of(rng, style)
    ink = _compose(_pieces(digits, bank, rng, style), rng, style)
    h, w = ink.shape
    paper = rng.uniform(0.55, 1.0) if rng.random() < 0.7 else 1.0
    background = paper * (1 - paper_texture(h, w, rng))
    background = background * (1 - _rules(h, w, ink, rng, style.baseline) * rng.uniform(0.3, 0.9))
    ink_level = rng.uniform(0.0, 0.45) * paper
    opacity = rng.uniform(0.75, 1.0)
    page = background + (ink_level - background) * ink * opacity
    if rng.random() < style.light_on_dark:
        page = 1 - page
    return _scan(page, rng, style), "".join(str(d) for d in digits)


def save_lines(folder: Path, count: int, bank: GlyphBank, seed: int) -> list[Path]:
    """`count` fields as PNG files named `<digits>_<index>.png` (the benchmark's convention)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 4242])
    paths = []
    for i in range(count):
        image, label = render_line(bank, rng)
        path = folder / f"{label}_{i:05d}.png"
        image.save(path)
        paths.append(path)
    return paths
