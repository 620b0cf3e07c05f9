"""Split a handwritten number into its digits, left to right, each ready for the model.

Geometry first (connected components; pieces stacked in the same columns joined; specks
dropped). Geometry cannot tell a 5 whose cap came loose from a 5 followed by a 1, so when
neighbouring pieces could be one digit, a `classify` function (the model, given by
`Predictor.read_number`) decides: the split whose digits the model is surest of wins.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from digitlab.reading.ink import EIGHT, ink_map, to_original
from digitlab.reading.preprocess import CANVAS, normalise_digit

logger = logging.getLogger(__name__)

OVERLAP = 0.5  # pieces sharing more than this share of the narrower one's columns are one digit
FRAGMENT = 0.35  # a piece smaller than this share of the median digit height is a fragment
REACH = 0.3  # a fragment this close (share of median height) joins its neighbour; else dropped
GROUP = 3  # at most this many neighbouring pieces are tried as one digit, and only when
WIDEST = 1.5  # together no wider than this share of the digit height, and when at most one
PART = 0.75  # of them is a whole digit's height (two of those are two digits, never one)
DIGIT_BONUS = 0.3  # added to each digit's log-confidence: a near tie goes to more digits

Classifier = Callable[[torch.Tensor], torch.Tensor]  # N×28×28 → N×classes probabilities


@dataclass
class DigitCrop:
    """One digit: its box [x0, y0, x1, y1] in original pixels (x1, y1 exclusive), 28×28 pixels."""

    box: list[int]
    pixels: torch.Tensor
    probabilities: torch.Tensor | None = None  # the classifier's answer, when it was asked


@dataclass
class NumberSegmentation:
    """The digits of a number, left to right, and what preprocessing found."""

    digits: list[DigitCrop]
    steps: dict[str, Any] = field(default_factory=dict)

    @property
    def has_ink(self) -> bool:
        return bool(self.digits)

    @property
    def pixels(self) -> torch.Tensor:
        """N×28×28, ready for `Predictor.predict` (0×28×28 when there are no digits)."""
        if not self.digits:
            return torch.zeros(0, CANVAS, CANVAS)
        return torch.stack([d.pixels for d in self.digits])

    @property
    def boxes(self) -> list[list[int]]:
        return [d.box for d in self.digits]


@dataclass(eq=False)  # pieces are compared by identity
class _Piece:
    """Connected components believed to be one digit, and their bounding box (working pixels)."""

    labels: list[int]
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def absorb(self, other: _Piece) -> None:
        self.labels += other.labels
        self.x0, self.y0 = min(self.x0, other.x0), min(self.y0, other.y0)
        self.x1, self.y1 = max(self.x1, other.x1), max(self.y1, other.y1)

    def gap(self, other: _Piece) -> int:
        """Chessboard distance between the two boxes (0 when they touch or overlap)."""
        dx = max(other.x0 - self.x1, self.x0 - other.x1, 0)
        dy = max(other.y0 - self.y1, self.y0 - other.y1, 0)
        return max(dx, dy)


def segment_number(image: Image.Image, classify: Classifier | None = None) -> NumberSegmentation:
    """Find the digits in `image` (one line of them), ordered left to right.

    With `classify`, runs of neighbouring pieces that fit in one digit's width are also tried
    as one digit, the split with the highest total log-confidence is kept, and each digit
    keeps its probabilities (so the caller need not classify it again).
    """
    ink, info = ink_map(image)
    steps: dict[str, Any] = {"pipeline": "robust", **info, "digits": 0}
    if not info["has_ink"]:
        return NumberSegmentation([], steps)
    labels, count = ndimage.label(ink > 0, structure=EIGHT)
    pieces = [
        _Piece([i + 1], s[1].start, s[0].start, s[1].stop, s[0].stop)
        for i, s in enumerate(ndimage.find_objects(labels))
        if s is not None
    ]
    pieces = _attach_fragments(_merge_overlapping(pieces))
    pieces.sort(key=lambda p: p.x0 + p.x1)
    if classify is None or len(pieces) < 2:
        digits = [_crop(ink, labels, piece, info) for piece in pieces]
    else:
        digits = _best_split(pieces, lambda piece: _crop(ink, labels, piece, info), classify)
    steps.update(digits=len(digits), components=count)
    logger.debug("%d components → %d digits", count, len(digits))
    return NumberSegmentation(digits, steps)


def find_digits(image: Image.Image) -> list[DigitCrop]:
    """The digits in `image`, left to right (see `segment_number`)."""
    return segment_number(image).digits


def _merge_overlapping(pieces: list[_Piece]) -> list[_Piece]:
    """Join nearby pieces stacked in the same columns (a 5's loose bar, a broken 4)."""
    while (pair := _overlapping_pair(pieces)) is not None:
        pair[0].absorb(pair[1])
        pieces.remove(pair[1])
    return pieces


def _overlapping_pair(pieces: list[_Piece]) -> tuple[_Piece, _Piece] | None:
    ordered = sorted(pieces, key=lambda p: p.x0)
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            if b.x0 >= a.x1:
                break  # sorted by x0: nothing further right overlaps a
            overlap = min(a.x1, b.x1) - b.x0
            gap = max(b.y0 - a.y1, a.y0 - b.y1, 0)  # a speck far below is not part of a
            if overlap > OVERLAP * min(a.width, b.width) and gap <= REACH * max(a.height, b.height):
                return a, b
    return None


def _attach_fragments(pieces: list[_Piece]) -> list[_Piece]:
    """Give small pieces to a near neighbour; drop those with none (dots, specks)."""
    if len(pieces) < 2:
        return pieces
    # The typical digit height, from pieces at least half the tallest, so specks don't vote.
    tallest = max(p.height for p in pieces)
    height = float(np.median([p.height for p in pieces if 2 * p.height >= tallest]))
    small = [p for p in pieces if max(p.width, p.height) < FRAGMENT * height]
    digits = [p for p in pieces if p not in small] or [max(pieces, key=lambda p: p.height)]
    for piece in small:
        if piece in digits:  # every piece was small: the tallest stands in for the digits
            continue
        nearest = min(digits, key=piece.gap)
        if piece.gap(nearest) <= REACH * height:
            nearest.absorb(piece)
    return digits


def _best_split(
    pieces: list[_Piece], crop: Callable[[_Piece], DigitCrop], classify: Classifier
) -> list[DigitCrop]:
    """The grouping of consecutive pieces into digits that maximises the summed log-confidence."""
    height = float(np.median([p.height for p in pieces]))
    candidates: dict[tuple[int, int], _Piece] = {}  # (first, last + 1) → the run as one piece
    for i in range(len(pieces)):
        run = _Piece(list(pieces[i].labels), pieces[i].x0, pieces[i].y0, pieces[i].x1, pieces[i].y1)
        candidates[i, i + 1] = run
        whole = int(pieces[i].height >= PART * height)  # whole-height pieces in the run
        for j in range(i + 1, min(i + GROUP, len(pieces))):
            run = _Piece(list(run.labels), run.x0, run.y0, run.x1, run.y1)
            run.absorb(pieces[j])
            whole += int(pieces[j].height >= PART * height)
            if whole > 1 or run.width > WIDEST * max(height, run.height):
                break
            candidates[i, j + 1] = run
    keys = list(candidates)
    crops = [crop(candidates[k]) for k in keys]
    probabilities = classify(torch.stack([c.pixels for c in crops]))
    for c, probs in zip(crops, probabilities, strict=True):
        c.probabilities = probs
    scores = dict(zip(keys, probabilities.amax(1).log().tolist(), strict=True))
    crop_of = dict(zip(keys, crops, strict=True))
    # best[j]: the best total for the first j pieces, and where its last digit starts.
    best: list[tuple[float, int]] = [(0.0, 0)] + [(-math.inf, 0)] * len(pieces)
    for (i, j), value in sorted(scores.items(), key=lambda item: item[0][1]):
        total = best[i][0] + value + DIGIT_BONUS
        if total > best[j][0]:
            best[j] = (total, i)
    digits, j = [], len(pieces)
    while j > 0:
        i = best[j][1]
        digits.append(crop_of[i, j])
        j = i
    return digits[::-1]


def _crop(ink: np.ndarray, labels: np.ndarray, piece: _Piece, info: dict[str, Any]) -> DigitCrop:
    """This piece's ink only (not a neighbour's overhang), normalised like a single digit."""
    window = (slice(piece.y0, piece.y1), slice(piece.x0, piece.x1))
    own = np.where(np.isin(labels[window], piece.labels), ink[window], 0.0)
    box = to_original([piece.x0, piece.y0, piece.x1, piece.y1], info)
    return DigitCrop(box=box, pixels=normalise_digit(own))
