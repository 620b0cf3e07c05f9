"""Synthetic training digits: printed digits typeset in the machine's fonts, and MNIST training
digits re-drawn with an even pen.

MNIST has only handwriting, so a model trained on it alone misreads typeset digits (a serif 1,
an open 4). And MNIST's writers pressed harder on some strokes than others, while a mouse, a
touch screen or a ball-point pen draws every stroke the same width; a model that never saw that
misreads more of them. Recipes can add both to the training split. Typeset digits go through the
same normalisation as user images (crop, 20 px, centre of mass); re-drawn ones through the whole
preprocessing a user's image gets, so they look exactly like what the model sees in use.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from digitlab.reading.preprocess import normalise_digit
from digitlab.reading.views import preprocess_robust
from digitlab.writing.fonts import digit_fonts
from digitlab.writing.strokes import write_with_pen

logger = logging.getLogger(__name__)


def printed_digits(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` typeset digits (uint8 N×28×28, white on black) and their labels, reproducibly."""
    fonts = digit_fonts()
    if not fonts or count <= 0:
        return torch.zeros(0, 28, 28, dtype=torch.uint8), torch.zeros(0, dtype=torch.long)
    rng = np.random.default_rng([seed, 7919])
    images = torch.empty(count, 28, 28, dtype=torch.uint8)
    labels = torch.arange(count) % 10
    for i in range(count):
        font = ImageFont.truetype(str(fonts[int(rng.integers(len(fonts)))]), int(rng.integers(40, 90)))
        canvas = Image.new("L", (160, 160), 0)
        ImageDraw.Draw(canvas).text((30, 20), str(int(labels[i])), font=font, fill=255)
        canvas = canvas.rotate(float(rng.uniform(-6, 6)), resample=Image.Resampling.BILINEAR)
        pixels = normalise_digit(np.asarray(canvas, dtype=np.float32) / 255.0)
        images[i] = (pixels * 255).round().clamp(0, 255).to(torch.uint8)
    logger.info("typeset %d printed digits from %d fonts", count, len(fonts))
    return images, labels


_CHUNK = 500


def redraw_one(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One MNIST digit (uint8 28×28) re-drawn the way users write, as the model would see it.

    Ink 28-120 px tall, a pen either a fixed 3-20 px (mouse, touch) or 4-12% of the height
    (pen on paper), tilted and slanted a little, white on black, then preprocessed.
    """
    height = rng.uniform(28, 120)
    pen = rng.uniform(3, 20) if rng.random() < 0.5 else height * rng.uniform(0.04, 0.12)
    mask = write_with_pen(digit, rng, height, pen, 8, 0.25)
    margin = int(rng.integers(4, 40))
    page = np.pad(np.round(mask * 255).astype(np.uint8), margin)
    return np.asarray(preprocess_robust(Image.fromarray(page)).pixels)


def _redraw_chunk(digits: np.ndarray, seed: int, start: int) -> np.ndarray:
    torch.set_num_threads(1)
    return np.stack([redraw_one(d, np.random.default_rng([seed, 104_729, start + i]))
                     for i, d in enumerate(digits)])


def redrawn_digits(
    images: torch.Tensor, labels: torch.Tensor, count: int, seed: int, progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` of the (training) `images` picked at random and re-drawn with an even pen
    (uint8 N×28×28, white on black, preprocessed) with their labels; the same for the same seed.

    About 13 ms a digit, spread over the machine's cores.
    """
    if count <= 0:
        return torch.zeros(0, 28, 28, dtype=torch.uint8), torch.zeros(0, dtype=torch.long)
    picks = torch.from_numpy(np.random.default_rng([seed, 104_723]).choice(len(images), count))
    digits = images[picks].numpy()
    starts = range(0, count, _CHUNK)
    workers = min(os.cpu_count() or 1, len(starts))
    with ProcessPoolExecutor(workers) as pool, tqdm(
        total=count, desc="re-drawing digits", unit="digit", disable=not progress, leave=False
    ) as bar:
        parts = []
        for part in pool.map(_redraw_chunk, (digits[s : s + _CHUNK] for s in starts),
                             [seed] * len(starts), starts):
            parts.append(part)
            bar.update(len(part))
    pixels = torch.from_numpy(np.concatenate(parts))
    logger.info("re-drew %d training digits with an even pen", count)
    return (pixels * 255).round().clamp(0, 255).to(torch.uint8), labels[picks].clone()
