"""An "in the wild" test set: MNIST test digits re-drawn the way real users hand them in.

Each handwritten sample re-draws an MNIST test digit's centre line (`digitlab.writing.strokes`) with a
pen of a chosen width, size, slant and position, so stroke width and layout vary as they do
in user uploads. Printed digits use the TrueType fonts found on the machine (`digitlab.writing.fonts`),
so that condition depends on the installed fonts. The harder conditions (continental styles,
low-resolution scans, shadows and page edges, marker, handwriting fonts, small numbers) are
drawn by `digitlab.writing.wild_hard`. Every sample is drawn from its own generator
seeded with (seed, condition, index): the same seed gives the same pixels, and sample i
does not depend on how many samples were asked for. The pages they are drawn on (canvases,
paper, photos, thin-pen scans) are `digitlab.writing.pages`.
"""

from __future__ import annotations

import json
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from digitlab.errors import ConfigError
from digitlab.files import atomic_path, write_json
from digitlab.writing import wild_hard
from digitlab.writing.fonts import HANDWRITING_PACKAGES, digit_fonts, handwriting_fonts
from digitlab.writing.pages import HANDWRITTEN, blend, to_image
from digitlab.writing.strokes import write_with_pen

__all__ = [
    "CONDITIONS", "NUMBER", "NUMBERS", "SMALL_NUMBER", "WildSample", "load_wild_set",
    "make_wild_set", "render_condition", "render_numbers", "save_wild_set",
]

logger = logging.getLogger(__name__)

CONDITIONS = ("canvas", "paper", "photo", "thin-pen", "printed",  # one digit per picture
              "continental", "low-res", "shadow", "marker", "handwriting-fonts")
NUMBER, SMALL_NUMBER = "number", "small-number"
NUMBERS = (NUMBER, SMALL_NUMBER)  # several digits per picture


@dataclass
class WildSample:
    """One test image, what it shows, and how it was made."""

    image: Image.Image
    label: str  # one digit ("7") or a digit string ("2024")
    condition: str
    touching: bool = False  # digits of a number whose ink touches (small numbers, sometimes)
    source: str = ""  # "mnist:<index>[,<index>...]" or the font file's name


def _rng(seed: int, condition: str, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(condition.encode()), *keys])


# ---------------------------------------------------------------- printed digits


def _printed(rng: np.random.Generator, digit: int, fonts: tuple[Path, ...]) -> WildSample:
    """One digit typeset in a random font, size and place; dark on light or light on dark."""
    path = fonts[int(rng.integers(len(fonts)))]
    text = str(digit)
    h = int(rng.integers(60, 401))
    w = int(h * rng.uniform(0.6, 1.6))
    ref = ImageFont.truetype(str(path), 100).getbbox(text)
    size = max(8, round(100 * h * rng.uniform(0.3, 0.8) / max(ref[3] - ref[1], 1)))
    font = ImageFont.truetype(str(path), size)
    left, top, right, bottom = (int(v) for v in font.getbbox(text))
    w = max(w, right - left + 4)
    light, dark = rng.uniform(220, 255), rng.uniform(0, 60)
    paper, ink = (light, dark) if rng.random() < 0.7 else (dark, light)
    image = Image.new("RGB", (w, h), (round(paper),) * 3)
    x = int(rng.integers(0, w - (right - left) + 1))
    y = int(rng.integers(0, h - (bottom - top) + 1))
    ImageDraw.Draw(image).text((x - left, y - top), text, font=font, fill=(round(ink),) * 3)
    return WildSample(image, text, "printed", source=path.name)


# ---------------------------------------------------------------- numbers


def _number_layout(
    rng: np.random.Generator, masks: list[np.ndarray], h0: float, min_gap: int
) -> tuple[list[tuple[int, int]], tuple[int, int]]:
    """Top-left corners of each mask on one line, with gaps and jitter, and the page size."""
    margin = [int(v) for v in rng.uniform(0.15, 1.0, size=4) * h0]  # left, top, right, bottom
    lefts, x = [], margin[0]
    for mask in masks:
        lefts.append(x)
        x += mask.shape[1] + int(rng.integers(min_gap, max(min_gap, int(0.5 * h0)) + 1))
    centres = [-m.shape[0] / 2 + rng.uniform(-0.08, 0.08) * h0 for m in masks]
    shift = margin[1] - min(centres)
    tops = [int(round(c + shift)) for c in centres]
    height = max(t + m.shape[0] for t, m in zip(tops, masks, strict=True)) + margin[3]
    width = lefts[-1] + masks[-1].shape[1] + margin[2]
    return list(zip(tops, lefts, strict=True)), (width, height)


def _number(
    rng: np.random.Generator, images: np.ndarray, labels: np.ndarray, n: int
) -> WildSample:
    """`n` MNIST digits by one "writer" (same pen, slant and look) left to right, not touching."""
    picks = rng.choice(len(images), size=n, replace=n > len(images))
    canvas_look = rng.random() < 0.5
    h0 = rng.uniform(40, 110)
    pen = rng.uniform(6, 14) if canvas_look else h0 * rng.uniform(0.05, 0.1)
    tilt, slant = rng.uniform(-5, 5), rng.uniform(-0.2, 0.2)
    masks = []
    for k in picks:
        h = h0 * rng.uniform(0.85, 1.15)
        masks.append(write_with_pen(images[k], rng, h, pen, 3, 0.05, lean=(tilt, slant)))
    corners, (w, h) = _number_layout(rng, masks, h0, min_gap=max(4, round(0.1 * h0)))
    if canvas_look:
        paper = 255.0 if rng.random() < 0.5 else 0.0
        ink: Any = 255.0 - paper
    else:
        paper, ink = rng.uniform(238, 255), (rng.uniform(10, 50),) * 3
    page = np.full((h, w, 3), paper, np.float32)
    for (top, left), mask in zip(corners, masks, strict=True):
        blend(page, mask, top, left, ink)
    label = "".join(str(int(labels[k])) for k in picks)
    source = "mnist:" + ",".join(str(int(k)) for k in picks)
    return WildSample(to_image(page), label, NUMBER, touching=False, source=source)


# ---------------------------------------------------------------- public API


def _as_arrays(images: torch.Tensor, labels: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    arr = np.asarray(images.detach().cpu() if isinstance(images, torch.Tensor) else images)
    labs = np.asarray(labels.detach().cpu() if isinstance(labels, torch.Tensor) else labels)
    if arr.ndim != 3 or arr.dtype != np.uint8 or len(arr) == 0 or len(arr) != len(labs):
        raise ConfigError(f"need uint8 images N×H×W and N labels, not {arr.dtype} {arr.shape}, "
                          f"{len(labs)} labels")
    return arr, labs


def render_condition(
    condition: str, images: torch.Tensor, labels: torch.Tensor, count: int, seed: int
) -> list[WildSample]:
    """`count` samples of one condition from MNIST test `images` (uint8 N×28×28) and `labels`.

    "printed" and "handwriting-fonts" ignore the images and typeset the ten digits in turn;
    "continental" uses only the 1s, 4s and 7s; "number" is `render_numbers` with its default
    lengths; "small-number" is two or three digits written small.
    """
    if condition == NUMBER:
        return render_numbers(images, labels, count, seed)
    if condition not in (*CONDITIONS, SMALL_NUMBER):
        raise ConfigError(f"unknown condition {condition!r}; choose from {CONDITIONS + NUMBERS}")
    if condition in ("printed", "handwriting-fonts"):
        fonts = digit_fonts() if condition == "printed" else handwriting_fonts()
        if not fonts:
            raise ConfigError("no font with digits found (not even matplotlib's)" if condition == "printed"
                              else "no handwriting font installed (apt-get install "
                              f"{' '.join(HANDWRITING_PACKAGES)})")
        start = int(_rng(seed, condition).integers(10))
        if condition == "printed":
            return [_printed(_rng(seed, condition, i), (start + i) % 10, fonts) for i in range(count)]
        return [_typeset_by_hand(_rng(seed, condition, i), (start + i) % 10, fonts) for i in range(count)]
    arr, labs = _as_arrays(images, labels)
    if condition == SMALL_NUMBER:
        samples = []
        for i in range(count):
            image, label, touching, source = wild_hard.small_number(_rng(seed, condition, i), arr, labs)
            samples.append(WildSample(image, label, condition, touching, source))
        return samples
    pool = np.arange(len(arr))
    if condition == "continental":
        pool = pool[np.isin(labs, wild_hard.CONTINENTAL_DIGITS)]
        if len(pool) == 0:
            raise ConfigError("the continental condition needs 1s, 4s or 7s among the images")
    order = pool[_rng(seed, condition).permutation(len(pool))]  # no repeats before all are used
    samples = []
    for i in range(count):
        k = int(order[i % len(order)])
        rng = _rng(seed, condition, i)
        if condition in HANDWRITTEN:
            image = HANDWRITTEN[condition](rng, arr[k])
        else:
            image = wild_hard.RENDERERS[condition](rng, arr[k], int(labs[k]))
        samples.append(WildSample(image, str(int(labs[k])), condition, source=f"mnist:{k}"))
    return samples


def _typeset_by_hand(rng: np.random.Generator, digit: int, fonts: tuple[Path, ...]) -> WildSample:
    path = fonts[int(rng.integers(len(fonts)))]
    image = wild_hard.font_on_paper(rng, path, digit)
    return WildSample(image, str(digit), "handwriting-fonts", source=path.name)


def render_numbers(
    images: torch.Tensor, labels: torch.Tensor, count: int, seed: int,
    min_digits: int = 2, max_digits: int = 8,
) -> list[WildSample]:
    """`count` multi-digit strings of `min_digits`..`max_digits` non-touching MNIST digits."""
    if not 1 <= min_digits <= max_digits:
        raise ConfigError(f"need 1 <= min_digits <= max_digits, got {min_digits}, {max_digits}")
    arr, labs = _as_arrays(images, labels)
    samples = []
    for i in range(count):
        rng = _rng(seed, NUMBER, i)
        samples.append(_number(rng, arr, labs, int(rng.integers(min_digits, max_digits + 1))))
    return samples


def make_wild_set(
    images: torch.Tensor, labels: torch.Tensor, per_condition: int, seed: int
) -> list[WildSample]:
    """`per_condition` samples of every condition in CONDITIONS, then as many of each NUMBERS."""
    samples: list[WildSample] = []
    for condition in (*CONDITIONS, *NUMBERS):
        samples += render_condition(condition, images, labels, per_condition, seed)
    return samples


def save_wild_set(samples: list[WildSample], folder: Path) -> Path:
    """Write each sample as a PNG (lossless: a photo keeps its JPEG artefacts) and manifest.json.

    Returns the manifest's path.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, sample in enumerate(samples):
        name = f"{i:05d}-{sample.condition}.png"
        with atomic_path(folder / name) as tmp:
            sample.image.save(tmp, format="PNG")
        entries.append({"file": name, "label": sample.label, "condition": sample.condition,
                        "touching": sample.touching, "source": sample.source})
    manifest = folder / "manifest.json"
    write_json(manifest, {"format": 1, "samples": entries})
    return manifest


def load_wild_set(folder: Path) -> list[WildSample]:
    """Read back a folder written by `save_wild_set`."""
    folder = Path(folder)
    entries = json.loads((folder / "manifest.json").read_text())["samples"]
    samples = []
    for entry in entries:
        with Image.open(folder / entry["file"]) as image:
            image.load()
            samples.append(WildSample(image.copy(), entry["label"], entry["condition"],
                                      entry.get("touching", False), entry.get("source", "")))
    return samples
