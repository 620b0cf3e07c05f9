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

from digitlab.reading.canvas import CANVAS
from digitlab.reading.measures import EIGHT
from digitlab.reading.robust.centring import normalise_digit
from digitlab.reading.robust.find_ink import WORK_SIZE, ink_map, to_original

logger = logging.getLogger(__name__)

OVERLAP = 0.5  # pieces sharing more than this share of the narrower one's columns are one digit
FRAGMENT = 0.35  # a piece smaller than this share of the median digit height is a fragment
REACH = 0.3  # a fragment this close (share of median height) joins its neighbour; else dropped
GROUP = 3  # at most this many neighbouring pieces are tried as one digit, and only when
WIDEST = 1.5  # together no wider than this share of the digit height, and when at most one
PART = 0.75  # of them is a whole digit's height (two of those are two digits, never one)
DIGIT_BONUS = 0.3  # added to each digit's log-confidence: a near tie goes to more digits
SMALL = 256  # pictures shorter than this on their longer side are enlarged to about it first,
MAX_ENLARGE = 8  # so that the anti-aliased rims of digits 1-2 px apart do not join them
WIDE = 0.8  # a piece wider than this share of its height may be touching digits: cut it too,
TWICE = 1.6  # (beside two digits or more: one wider than this many times their median width)
NARROWEST = 0.25  # at columns with little ink, no nearer than this share of its height together
MAX_CUTS = 4
ONE_WIDE, WIDE_COST = 1.25, 2.0  # a digit wider than this share of its height costs this
NECK = 0.6  # eroding a piece no further than this share of its deepest point, looking for
CORE = 0.15  # cores at least this share of the biggest one's size
CUT_COST = 0.2  # taken off the bonus of a digit that is only part of a cut piece,
SLICE_SURE = 0.7  # which is only a digit at all when the model gives it at least this
# An enlarged small picture was written with a pen broad for its digits: where two touch, the
# join is as thick as a stroke, so eroding finds no neck. Its wide pieces are cut at columns
# instead, from this share of the height wide (a 13 touching is narrower than WIDE), and as near
# as this share of the height to the piece's ends (a 1 is narrower than NARROWEST).
SMALL_WIDE, SMALL_EDGE = 0.6, 0.1

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
    blob: int = 0  # slices cut from one wide piece share a blob number (> 0); they may rejoin

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
    enlarged, factor = _enlarged(image)
    ink, info = ink_map(enlarged, max(enlarged.size) if factor > 1 else WORK_SIZE)
    if factor > 1:  # boxes are reported in the picture's own pixels
        info.update(size=list(image.size), work_scale=info["work_scale"] * factor, enlarged=factor)
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
    if classify is None:
        digits = [_crop(ink, labels, piece, info) for piece in pieces]
    else:
        pieces = _slice_wide(pieces, labels, small=factor > 1)
        if len(pieces) < 2:
            digits = [_crop(ink, labels, piece, info) for piece in pieces]
        else:
            digits = _best_split(pieces, lambda piece: _crop(ink, labels, piece, info), classify)
    steps.update(digits=len(digits), components=count)
    logger.debug("%d components → %d digits", count, len(digits))
    return NumberSegmentation(digits, steps)


def _enlarged(image: Image.Image) -> tuple[Image.Image, int]:
    """A small picture enlarged (bilinear) by a whole factor to about SMALL px, and the factor."""
    factor = min(MAX_ENLARGE, SMALL // max(image.size))
    if factor < 2:
        return image, 1
    if image.mode not in ("L", "RGB", "RGBA", "LA", "F"):
        image = image.convert("RGBA" if "A" in image.mode or "transparency" in image.info else "RGB")
    size = (image.width * factor, image.height * factor)
    return image.resize(size, Image.Resampling.BILINEAR), factor


def _slice_wide(pieces: list[_Piece], labels: np.ndarray, small: bool = False) -> list[_Piece]:
    """Wide pieces (touching digits?) split into slices of one blob, at a neck if it has one
    (where two digits touch), else at its thinnest columns. `labels` gains the slices' labels.
    In a `small` (enlarged) picture, at columns only, and more readily (see SMALL_WIDE).

    The model later decides, slice run by slice run, which slices are one digit (_best_split).
    """
    out: list[_Piece] = []
    tallest = max((p.height for p in pieces), default=0)
    whole = [p for p in pieces if p.height >= PART * tallest]
    for blob, piece in enumerate(pieces, start=1):
        # Only a piece of a whole digit's height can be two digits side by side (not a loose
        # bar); beside other digits it must be as wide as two of them, alone wider than tall.
        others = [p.width for p in whole if p is not piece]
        wide = (piece.width > TWICE * float(np.median(others)) if len(others) >= 2
                else piece.width > (SMALL_WIDE if small else WIDE) * piece.height)
        if not wide or piece.height < PART * tallest:
            out.append(piece)
            continue
        parts = None if small else _split_at_necks(piece, labels, blob)
        if parts is None:
            cuts = _cut_columns(piece, labels, SMALL_EDGE if small else NARROWEST)
            edges = [piece.x0, *cuts, piece.x1]
            parts = []
            for a, b in zip(edges, edges[1:], strict=False):
                rows = np.flatnonzero(np.isin(labels[piece.y0 : piece.y1, a:b], piece.labels).any(axis=1))
                if rows.size:
                    parts.append(_Piece(list(piece.labels), a, piece.y0 + int(rows[0]), b,
                                        piece.y0 + int(rows[-1]) + 1, blob if cuts else 0))
        out += parts
    return out


def _split_at_necks(piece: _Piece, labels: np.ndarray, blob: int) -> list[_Piece] | None:
    """Erode the piece until it falls apart into cores of some size; every pixel goes to the
    nearest core. None when it never does (no neck: one digit, or digits crossing)."""
    window = (slice(piece.y0, piece.y1), slice(piece.x0, piece.x1))
    own = np.isin(labels[window], piece.labels)
    depth = ndimage.distance_transform_edt(own)
    for level in np.linspace(1.0, NECK * float(depth.max()), 6):
        cores, count = ndimage.label(depth > level, structure=EIGHT)
        if count < 2:
            continue
        sizes = np.bincount(cores.ravel(), minlength=count + 1)[1:]
        big = [k + 1 for k in range(count) if sizes[k] >= CORE * sizes.max()]
        if len(big) >= 2:
            break
    else:
        return None
    near = ndimage.distance_transform_edt(~np.isin(cores, big), return_indices=True)[1]
    owner = cores[near[0], near[1]]
    parts, first = [], int(labels.max()) + 1
    for k, core in enumerate(big):
        mask = own & (owner == core)
        labels[window][mask] = first + k
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        parts.append(_Piece([first + k], piece.x0 + int(cols[0]), piece.y0 + int(rows[0]),
                            piece.x0 + int(cols[-1]) + 1, piece.y0 + int(rows[-1]) + 1, blob))
    return sorted(parts, key=lambda p: p.x0 + p.x1)


def _cut_columns(piece: _Piece, labels: np.ndarray, edge: float) -> list[int]:
    """Up to MAX_CUTS columns of a piece where its ink is thinnest (local minima), apart, and
    at least `edge` of its height from its ends."""
    own = np.isin(labels[piece.y0 : piece.y1, piece.x0 : piece.x1], piece.labels)
    profile = ndimage.uniform_filter1d(own.sum(axis=0).astype(np.float32), 3)
    gap = max(2, round(NARROWEST * piece.height))
    end = max(2, round(edge * piece.height))
    inner = range(end, piece.width - end)
    minima = [x for x in inner if profile[x] <= profile[x - 1] and profile[x] <= profile[x + 1]
              and profile[x] < 0.5 * float(profile.max())]
    chosen: list[int] = []
    for x in sorted(minima, key=lambda x: profile[x]):
        if len(chosen) < MAX_CUTS and all(abs(x - c) >= gap for c in chosen):
            chosen.append(x)
    return sorted(piece.x0 + x for x in chosen)


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
        for j in range(i + 1, len(pieces)):
            run = _Piece(list(run.labels), run.x0, run.y0, run.x1, run.y1)
            run.absorb(pieces[j])
            whole += int(pieces[j].height >= PART * height)
            # slices of one cut piece may be one digit however many and tall they are (a cut 0)
            siblings = pieces[i].blob > 0 and all(p.blob == pieces[i].blob for p in pieces[i : j + 1])
            too_many = not siblings and (whole > 1 or j >= i + GROUP)
            if too_many or run.width > WIDEST * max(height, run.height):
                break
            candidates[i, j + 1] = run
    for blob in {p.blob for p in pieces if p.blob}:  # a cut piece may always be one digit again
        members = [k for k, p in enumerate(pieces) if p.blob == blob]
        first = pieces[members[0]]
        rejoined = _Piece(list(first.labels), first.x0, first.y0, first.x1, first.y1)
        for k in members[1:]:
            rejoined.absorb(pieces[k])
        candidates.setdefault((members[0], members[-1] + 1), rejoined)
    keys = list(candidates)
    crops = [crop(candidates[k]) for k in keys]
    probabilities = classify(torch.stack([c.pixels for c in crops]))
    for c, probs in zip(crops, probabilities, strict=True):
        c.probabilities = probs
    scores = dict(zip(keys, probabilities.amax(1).log().tolist(), strict=True))
    for i, j in keys:  # two digits squeezed into one 20-px box read as one: a poor bet
        run = candidates[i, j]
        if run.height >= PART * height and run.width > ONE_WIDE * run.height:
            scores[i, j] -= WIDE_COST
    for i, j in keys:  # a digit that cuts through a piece: its slices must read better apart
        left = i > 0 and pieces[i].blob > 0 and pieces[i - 1].blob == pieces[i].blob
        right = j < len(pieces) and pieces[j].blob > 0 and pieces[j].blob == pieces[j - 1].blob
        if left or right:  # and it must be read clearly: half a 0 is a poor 1
            scores[i, j] = scores[i, j] - CUT_COST if math.exp(scores[i, j]) >= SLICE_SURE else -math.inf
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
