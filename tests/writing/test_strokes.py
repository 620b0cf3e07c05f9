"""Pen strokes: thinning gives 1-px centre lines; the re-drawn pen has the asked-for width."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage

from digitlab.errors import ConfigError
from digitlab.writing import strokes


def vertical_stroke() -> np.ndarray:
    """A 28×28 MNIST-like "1": a 3-px bright vertical bar on black, soft edges."""
    image = Image.new("L", (28, 28), 0)
    ImageDraw.Draw(image).line((14, 4, 14, 24), fill=255, width=3)
    return np.asarray(image.filter(ImageFilter.GaussianBlur(0.5)))


def test_thin_reduces_thick_bar_to_its_centre_row():
    bar = np.zeros((15, 50), dtype=bool)
    bar[4:11, 5:45] = True  # 7 rows thick, centre row 7
    line = strokes.thin(bar)
    assert not (line & ~bar).any()
    assert ndimage.label(line, structure=np.ones((3, 3)))[1] == 1
    assert set(np.nonzero(line)[0].tolist()) == {7}
    assert (line.sum(axis=0)[10:40] == 1).all()  # 1 px thick, unbroken along the middle


@pytest.mark.parametrize("width", [1.0, 2.5, 8.0, 9.0])
def test_redrawn_straight_stroke_has_exact_pen_width_and_height(width):
    mask = strokes.redraw_with_pen(vertical_stroke(), height=100, width=width, angle=0, slant=0)
    assert mask.dtype == np.float32 and 0 <= mask.min() and mask.max() == 1
    assert abs(mask.shape[0] - 100) <= 1
    coverage = mask.sum(axis=1)  # anti-aliased ink across each row: the pen's width
    middle = coverage[len(coverage) // 4 : 3 * len(coverage) // 4]
    assert np.allclose(middle, width, atol=1e-5)


def test_redraw_drops_stray_specks_and_refuses_blank_digit():
    digit = vertical_stroke().copy()
    digit[3:5, 3:5] = 255  # a speck far from the stroke, as MNIST sometimes has
    mask = strokes.redraw_with_pen(digit, height=100, width=8, angle=0, slant=0)
    assert ndimage.label(mask > 0)[1] == 1
    assert mask.shape[1] <= 9  # just the stroke, not the speck beside it
    with pytest.raises(ConfigError, match="no ink"):
        strokes.redraw_with_pen(np.zeros((28, 28), np.uint8), 100, 8, 0, 0)


def test_write_with_pen_caps_the_pen_and_draws_tilt_and_slant_from_the_generator():
    from digitlab.writing.strokes import MAX_PEN, redraw_with_pen, write_with_pen

    digit = np.zeros((28, 28), np.uint8)
    digit[5:23, 12:16] = 255  # a 1
    digit[5:9, 8:14] = 255
    written = write_with_pen(digit, np.random.default_rng(3), 70, 30, 8, 0.25, lean=(2.0, 0.1))
    draws = np.random.default_rng(3)
    tilt, slant = 2.0 + draws.uniform(-8, 8), 0.1 + draws.uniform(-0.25, 0.25)
    assert np.array_equal(written, redraw_with_pen(digit, 70, 70 / MAX_PEN, tilt, slant))
