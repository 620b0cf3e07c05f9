"""Splitting drawn numbers into digits (no model: only boxes, order and crops are checked)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from scipy import ndimage

from digitlab.reading.pipelines import preprocess
from digitlab.reading.robust.find_ink import WORK_SIZE, ink_map
from digitlab.reading.segment import DigitCrop, find_digits, segment_number
from tests.drawing import digit_image, draw_digit, similarity

Box = tuple[int, int, int, int]


def render_number(digits: list[tuple[str, int]], gap: int = 25, stroke: int = 9, margin: int = 30,
                  ink: int = 0, paper: int = 255, scale: float = 1.0) -> tuple[Image.Image, list[Box]]:
    """Digits (kind, height) on one baseline; return the image and each digit's true ink box."""
    tallest = max(h for _, h in digits)
    width = margin * 2 + sum(int(0.6 * h) for _, h in digits) + gap * (len(digits) - 1)
    size = (round(width * scale), round((tallest + 2 * margin) * scale))
    image, boxes, x = Image.new("L", size, paper), [], margin
    for kind, height in digits:
        box = tuple(v * scale for v in (x, margin + tallest - height, x + 0.6 * height,
                                        margin + tallest))
        alone = Image.new("L", size, 0)
        draw_digit(alone, kind, box, round(stroke * scale), 255)
        draw_digit(image, kind, box, round(stroke * scale), ink)
        boxes.append(alone.getbbox())
        x += int(0.6 * height) + gap
    return image, boxes


def covers(found: list[int], true: Box, slack: int = 2) -> bool:
    """`found` contains the true box (within `slack` px) and is not much bigger."""
    inside = (found[0] <= true[0] + slack and found[1] <= true[1] + slack
              and found[2] >= true[2] - slack and found[3] >= true[3] - slack)
    area = (found[2] - found[0]) * (found[3] - found[1])
    return inside and area <= 1.3 * (true[2] - true[0]) * (true[3] - true[1])


def check(crops: list[DigitCrop], boxes: list[Box]) -> None:
    assert len(crops) == len(boxes)
    assert [c.box[0] for c in crops] == sorted(c.box[0] for c in crops)  # left to right
    for crop, box in zip(crops, boxes, strict=True):
        assert covers(crop.box, box), (crop.box, box)
        assert crop.pixels.shape == (28, 28) and float(crop.pixels.max()) > 0.99


@pytest.mark.parametrize("text", ["2024", "31", "7", "57214031"])
def test_numbers_split_into_their_digits_left_to_right(text):
    image, boxes = render_number([(kind, 100) for kind in text])
    check(find_digits(image), boxes)


def test_digits_of_different_heights_on_one_line():
    image, boxes = render_number([("7", 120), ("4", 60), ("1", 90), ("0", 45), ("3", 75)])
    check(find_digits(image), boxes)


def test_a_five_with_a_loose_top_bar_is_one_digit():
    image, boxes = render_number([("5-broken", 100), ("3", 100)])
    five = np.asarray(image)[:, : boxes[0][2] + 5] < 128
    assert ndimage.label(five, structure=np.ones((3, 3)))[1] == 2  # the bar really is apart
    check(find_digits(image), boxes)  # one box from the bar's top to the body's bottom


def constant(value: float):
    """A stand-in for the model: every crop's top probability is exp(`value`)."""
    return lambda pixels: torch.full((len(pixels), 1), math.exp(value))


def test_a_scorer_decides_whether_a_part_beside_a_digit_joins_it():
    image, boxes = render_number([("5-loose", 100), ("3", 100)], stroke=5, gap=45)
    assert len(find_digits(image)) == 3  # geometry alone: the bar has no column in common
    assert len(segment_number(image, classify=constant(0.0)).digits) == 3  # a tie goes to more digits
    joined = segment_number(image, classify=constant(-5.0)).digits  # sure only of joined runs
    assert len(joined) == 2  # which neighbour the bar joins is the model's call (test_default_model)


@pytest.mark.parametrize("text", ["2024", "11", "77"])
def test_a_scorer_never_joins_two_whole_digits(text):
    image, boxes = render_number([(kind, 100) for kind in text], gap=12)
    check(segment_number(image, classify=constant(-5.0)).digits, boxes)


def test_specks_and_light_on_dark_do_not_add_digits():
    image, boxes = render_number([(kind, 90) for kind in "2024"], ink=230, paper=30)
    pixels = np.asarray(image).copy()
    rng = np.random.default_rng(3)
    for y, x in zip(rng.integers(5, pixels.shape[0] - 5, 12), rng.integers(5, pixels.shape[1] - 5, 12),
                    strict=True):
        pixels[y : y + 2, x : x + 2] = 230
    check(find_digits(Image.fromarray(pixels)), boxes)


@pytest.mark.parametrize("text", ["7", "2024"])
def test_middling_specks_far_from_the_digits_are_dropped(text):
    image, boxes = render_number([(kind, 90) for kind in text], margin=90)
    draw = ImageDraw.Draw(image)
    w, h = image.size
    for x, y in ((10, 10), (w - 25, 12), (w // 2, h - 22), (15, h - 20)):
        draw.ellipse((x, y, x + 9, y + 9), fill=0)  # big enough to survive the speck filter
    assert ink_map(image)[1]["has_ink"]
    check(find_digits(image), boxes)


def test_boxes_are_in_original_pixels_for_large_images():
    image, boxes = render_number([(kind, 100) for kind in "2024"], scale=5.0)
    assert max(image.size) > WORK_SIZE  # analysed at a reduced working size
    check(find_digits(image), boxes)


def test_each_crop_is_normalised_like_a_single_digit():
    image, _ = render_number([("3", 100), ("1", 100)], stroke=9)
    three = segment_number(image).digits[0].pixels
    alone = preprocess(digit_image("3", size=200, stroke=9, box=(70, 50, 130, 150))).pixels
    assert similarity(three, alone) > 0.95


def test_segmentation_reports_and_stacks():
    image, _ = render_number([(kind, 80) for kind in "2024"])
    result = segment_number(image)
    assert result.has_ink and result.pixels.shape == (4, 28, 28)
    assert result.boxes == [d.box for d in result.digits]
    assert result.steps["digits"] == 4 and result.steps["inverted"] is True
    assert result.steps["size"] == list(image.size)
    assert json.loads(json.dumps(result.steps)) == result.steps


def test_a_blank_image_has_no_digits():
    result = segment_number(Image.new("L", (300, 100), 255))
    assert not result.has_ink and result.digits == [] and result.pixels.shape == (0, 28, 28)
    assert "reason" in result.steps
