"""A picture of a number made ready for the line reader (models.linenet): ink bright on 0,
cropped to where the writing is, `HEIGHT` px high.

Training (every synthetic field) and reading (every user's picture) go through the same
`prepare_line`, so the net sees in use exactly what it learned from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from digitlab.models.linenet import HEIGHT, STRIDE
from digitlab.reading.images import to_grayscale
from digitlab.reading.measures import ink_box, ink_is_dark
from digitlab.reading.parameters import LINES, LineFields


def ink_levels(grey: np.ndarray, params: LineFields = LINES) -> np.ndarray:
    """0 where the paper is, about 1 where the ink is, whichever way round the picture is
    (reading.measures.ink_is_dark decides, as for every pipeline)."""
    paper = float(np.median(grey))
    ink = (paper - grey) if ink_is_dark(grey, paper) else (grey - paper)
    strongest = float(np.quantile(ink, 1 - params.dark_share))
    return np.clip(ink / max(strongest, params.min_range), *params.clip)


def writing_box(ink: np.ndarray, params: LineFields = LINES) -> tuple[int, int, int, int]:
    """[x0, y0, x1, y1] (exclusive) around the clearly inked pixels, with a margin; the whole
    picture when none is clearly ink (textured paper: the net sorts it out)."""
    box = ink_box(ink >= params.crop_level, 0)
    if box is None:
        return 0, 0, ink.shape[1], ink.shape[0]
    x0, y0, x1, y1 = box
    margin = int(np.ceil(params.crop_margin * (y1 - y0))) + 1
    return (max(0, x0 - margin), max(0, y0 - margin),
            min(ink.shape[1], x1 + margin), min(ink.shape[0], y1 + margin))


@dataclass
class PreparedLine:
    """A field ready for the net, and what maps its columns back onto the picture."""

    pixels: np.ndarray  # HEIGHT×W, ink bright
    ink: np.ndarray  # the picture's ink levels (full size)
    box: tuple[int, int, int, int]  # where `pixels` came from in the picture


def prepare(image: Image.Image, params: LineFields = LINES) -> PreparedLine:
    ink = ink_levels(to_grayscale(image), params)
    box = writing_box(ink, params)
    left, top, right, bottom = box
    crop = ink[top:bottom, left:right]
    h, w = crop.shape
    width = int(np.clip(round(w * HEIGHT / max(h, 1)), params.min_width, params.max_width))
    resample = Image.Resampling.BOX if h > HEIGHT else Image.Resampling.BILINEAR
    pixels = np.asarray(Image.fromarray(crop).resize((width, HEIGHT), resample), dtype=np.float32)
    return PreparedLine(pixels, ink, box)


def prepare_line(image: Image.Image, params: LineFields = LINES) -> np.ndarray:
    """HEIGHT×W float32: the picture's writing, ink bright, paper 0, W in proportion."""
    return prepare(image, params).pixels


PAD_TO = 32  # batches are padded to a multiple of this many columns: oneDNN builds its kernels
# once per input shape, and a new width every batch made training ~10× slower on CPUs


def batch_lines(lines: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Pictures of different widths as one N×1×HEIGHT×W batch (paper-padded on the right, W a
    multiple of PAD_TO) and their widths."""
    widths = np.array([line.shape[1] for line in lines], dtype=np.int64)
    width = -(-int(widths.max(initial=STRIDE)) // PAD_TO) * PAD_TO
    batch = np.zeros((len(lines), 1, HEIGHT, width), np.float32)
    for i, line in enumerate(lines):
        batch[i, 0, :, : line.shape[1]] = line
    return batch, widths
