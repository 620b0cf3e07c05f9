"""Synthetic training digits: printed digits typeset in the machine's fonts.

MNIST has only handwriting, so a model trained on it alone misreads typeset digits (a serif 1,
an open 4). Recipes can add these to the training split; they go through the same
normalisation as user images (crop, 20 px, centre of mass), so they look like MNIST digits.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from digitlab.fonts import digit_fonts
from digitlab.preprocess import normalise_digit

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
