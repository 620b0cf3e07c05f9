"""The robust pipeline, on digits drawn with PIL (no model, no network)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageOps
from scipy import ndimage

from digitlab.errors import ConfigError
from digitlab.reading.naive import preprocess_naive
from digitlab.reading.pipelines import DEFAULT_PIPELINE, PIPELINES, preprocess
from digitlab.reading.robust.centring import normalise_digit
from digitlab.reading.robust.find_ink import ink_map
from tests.drawing import DIGITS, digit_image, shadowed_photo, similarity, soft_scan, table_edge_photo


def stroke_width(pixels: torch.Tensor) -> float:
    mask = np.pad(pixels.numpy() > 0.5, 1)
    return 4 * float(ndimage.distance_transform_edt(mask)[mask].mean()) - 2


# ---------------------------------------------------------------- pipelines


def test_pipelines_and_default():
    assert DEFAULT_PIPELINE == "robust" and set(PIPELINES) >= {"naive", "robust"}
    with pytest.raises(ConfigError, match="unknown preprocessing pipeline"):
        preprocess(digit_image(), "fancy")


def test_naive_pipeline_is_the_tutorials():
    image = digit_image(ink=255, paper=0)
    prepared = preprocess(image, "naive")
    expected = np.asarray(image.resize((28, 28), Image.Resampling.BILINEAR)) / 255
    assert prepared.has_ink and prepared.steps["pipeline"] == "naive"
    assert np.allclose(prepared.pixels.numpy(), expected)
    assert torch.equal(preprocess_naive(image).pixels, prepared.pixels)


@pytest.mark.parametrize("kind", DIGITS)
def test_dark_on_light_and_light_on_dark_agree(kind):
    dark = preprocess(digit_image(kind, ink=20, paper=230))
    light = preprocess(digit_image(kind, ink=230, paper=20))
    assert dark.steps["inverted"] and not light.steps["inverted"]
    assert float((dark.pixels - light.pixels).abs().max()) < 0.1


def test_output_is_mnist_shaped_and_steps_say_how():
    prepared = preprocess(digit_image("4", size=280, box=(100, 40, 180, 200)))
    pixels, steps = prepared.pixels, prepared.steps
    assert pixels.shape == (28, 28) and pixels.dtype == torch.float32
    assert float(pixels.min()) >= 0 and math.isclose(float(pixels.max()), 1, abs_tol=1e-5)
    rows, cols = np.nonzero(pixels.numpy() > 0.05)
    assert rows.max() - rows.min() + 1 in (20, 21)  # the longer side is 20 px
    com = ndimage.center_of_mass(pixels.numpy())
    assert abs(com[0] - 14) <= 0.5 and abs(com[1] - 14) <= 0.5
    x0, y0, x1, y1 = steps["ink_box"]
    assert abs(x0 - 100) <= 12 and abs(y0 - 40) <= 12 and abs(x1 - 180) <= 12 and abs(y1 - 200) <= 12
    assert steps["size"] == [280, 280] and steps["inverted"] is True
    assert math.isclose(steps["scale"], 20 / (y1 - y0), rel_tol=0.1)
    assert json.loads(json.dumps(steps)) == steps  # plain types: fit for JSON responses


def test_an_mnist_like_input_comes_back_unchanged():
    once = preprocess(digit_image("2")).pixels
    again = preprocess(Image.fromarray((once.numpy() * 255).astype(np.uint8))).pixels
    assert similarity(once, again) > 0.97


def test_a_picture_already_in_mnists_format_is_taken_as_it_is():
    mnist_like = preprocess(digit_image("5")).pixels  # 28×28, light on dark, 20 px, centred
    image = Image.fromarray((mnist_like.numpy() * 255).round().astype(np.uint8))
    prepared = preprocess(image)
    assert "as_is" in prepared.steps and prepared.alternatives == {}
    expected = np.asarray(image, dtype=np.float32) / float(np.asarray(image).max())
    assert np.array_equal(prepared.pixels.numpy(), expected)


@pytest.mark.parametrize("change", ["small", "off-centre", "touches-edge", "dark-on-light"])
def test_other_28_pixel_pictures_are_normalised(change):
    pixels = (preprocess(digit_image("5")).pixels.numpy() * 255).round().astype(np.uint8)
    if change == "small":  # a 10-px digit on a 28×28 canvas
        pixels = np.pad(np.asarray(Image.fromarray(pixels).resize((14, 14))), 7)
    elif change == "off-centre":
        pixels = np.roll(pixels, 3, axis=1)
    elif change == "touches-edge":
        pixels[0, 10:14] = 255
    else:
        pixels = 255 - pixels
    prepared = preprocess(Image.fromarray(pixels))
    assert "as_is" not in prepared.steps and prepared.has_ink
    if change != "touches-edge":  # the same 5, brought back to MNIST's format
        assert similarity(prepared.pixels, preprocess(digit_image("5")).pixels) > 0.8


def test_thin_strokes_on_large_images_get_mnist_width():
    thin = preprocess(digit_image("3", size=1200, stroke=3))
    assert thin.steps["thickened_by"] > 0 and 1.8 <= stroke_width(thin.pixels) <= 4
    assert similarity(thin.pixels, preprocess(digit_image("3", size=200)).pixels) > 0.85


def test_photo_with_uneven_light_noise_and_specks():
    rng = np.random.default_rng(1)
    clean = digit_image("5", size=240)
    light = np.linspace(0.45, 1.0, 240)[None, :] * np.linspace(0.8, 1.0, 240)[:, None]
    paper = 235 * light + rng.normal(0, 6, (240, 240))
    photo = np.where(np.asarray(clean) < 128, 40 * light, paper)
    for y, x in rng.integers(10, 230, (6, 2)):
        photo[y : y + 2, x : x + 2] = 60  # dust
    prepared = preprocess(Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)))
    assert prepared.has_ink and prepared.steps["inverted"]
    assert similarity(prepared.pixels, preprocess(clean).pixels) > 0.9


@pytest.mark.parametrize("kind", DIGITS)
def test_the_quick_first_look_gives_what_the_full_look_gives(kind, monkeypatch):
    image = digit_image(kind, size=280, stroke=18)  # a typical canvas drawing
    quick = preprocess(image)
    assert quick.steps["work_scale"] < 1  # it was read from the small copy
    monkeypatch.setattr("digitlab.reading.robust.centring.QUICK_SIZE", 10_000)  # no quick look
    full = preprocess(image)
    assert full.steps["work_scale"] == 1
    assert similarity(quick.pixels, full.pixels) > 0.97
    assert quick.steps["ink_box"] == pytest.approx(full.steps["ink_box"], abs=3)


def test_thin_or_small_digits_skip_the_quick_look():
    for image in (digit_image("4", size=280, stroke=2), digit_image("4", size=600, stroke=12,
                                                                     box=(280, 280, 320, 340))):
        assert preprocess(image).steps["work_scale"] > 128 / max(image.size)


def test_building_blocks_for_numbers():
    ink, info = ink_map(digit_image("0", size=100))
    assert ink.dtype == np.float32 and ink.shape == (100, 100) and info["has_ink"]
    assert ink.min() == 0 and ink.max() == 1 and ink[:5].max() == 0  # paper is exactly zero
    assert normalise_digit(np.zeros((40, 30), np.float32)).abs().sum() == 0
    assert similarity(normalise_digit(ink), preprocess(digit_image("0", size=100)).pixels) > 0.999


# ---------------------------------------------------------------- plain, edges, views


def test_plain_pipeline_inverts_crops_scales_and_centres():
    prepared = preprocess(digit_image("4", size=280, box=(100, 40, 180, 200)), "plain")
    assert prepared.has_ink and prepared.steps["pipeline"] == "plain" and prepared.steps["inverted"]
    pixels = prepared.pixels.numpy()
    rows, cols = np.nonzero(pixels > 0.05)
    assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 in (20, 21)
    com = ndimage.center_of_mass(pixels)
    assert abs(com[0] - 13.5) <= 0.5 and abs(com[1] - 13.5) <= 0.5
    x0, y0, x1, y1 = prepared.steps["ink_box"]
    assert abs(x0 - 100) <= 12 and abs(y0 - 40) <= 12 and abs(x1 - 180) <= 12 and abs(y1 - 200) <= 12
    light = preprocess(digit_image("4", size=280, box=(100, 40, 180, 200), ink=255, paper=0), "plain")
    assert not light.steps["inverted"] and similarity(light.pixels, prepared.pixels) > 0.95
    blank = preprocess(Image.new("L", (50, 50), 128), "plain")
    assert not blank.has_ink and blank.steps["reason"]


def test_a_table_edge_along_the_top_is_not_ink():
    photo = table_edge_photo("1")
    prepared = preprocess(photo)
    assert prepared.steps.get("edges_removed", 0) >= 1
    x0, y0, x1, y1 = prepared.steps["ink_box"]  # only the 1, drawn at (200, 170)-(260, 330)
    assert y0 >= 150 and 180 <= x0 and x1 <= 280
    plain = preprocess(photo, "plain")
    assert plain.steps["ink_box"][1] < 70  # the plain recipe takes the edge for ink


@pytest.mark.parametrize(("kind", "box"), [("1", (320, 150, 370, 319)), ("7", (300, 150, 399, 319))])
def test_a_sheet_mostly_in_shadow_is_still_dark_ink_on_paper(kind, box):
    photo = shadowed_photo(kind, shade=0.4, box=box)
    assert np.median(np.asarray(photo)) < 0.35 * 255  # most of the picture is shadowed paper
    prepared = preprocess(photo)
    assert prepared.steps["inverted"] and prepared.steps["lighting"] == "steps"
    x0, y0, x1, y1 = prepared.steps["ink_box"]
    assert x0 >= box[0] - 12 and x1 <= box[2] + 12 and y0 >= box[1] - 12  # the digit, not the shade
    # The digit reaches the frame, but the plain recipe (which takes the shade for ink) is
    # not asked: its two views would outvote this one.
    assert prepared.alternatives == {} and "views" not in prepared.steps


def test_a_lone_straight_stroke_touching_the_frame_is_kept():
    image = Image.new("L", (60, 200), 255)
    ImageDraw.Draw(image).line([(30, 0), (30, 199)], fill=0, width=8)  # a 1 cropped tight
    prepared = preprocess(image)
    assert prepared.has_ink and "edges_removed" not in prepared.steps


def test_a_soft_digit_that_fills_a_small_frame_gets_plain_views_too():
    prepared = preprocess(soft_scan("0", small=10, size=40))
    assert prepared.has_ink and set(prepared.alternatives) == {"plain", "plain-levelled"}
    views = prepared.steps["views"]
    assert views["main"] in ("opening", "steps", "plain") and "small picture" in views["why"]
    for pixels in prepared.alternatives.values():
        assert pixels.shape == (28, 28) and float(pixels.max()) == pytest.approx(1, abs=1e-5)


def test_an_evenly_lit_big_picture_gets_one_view():
    prepared = preprocess(digit_image("3", size=280))
    assert prepared.alternatives == {} and "views" not in prepared.steps
    assert prepared.steps["paper_range"] == 0.0


# ---------------------------------------------------------------- properties

digits = st.sampled_from(DIGITS)
contrasts = st.tuples(st.integers(0, 80), st.integers(170, 255))  # (ink, paper)
EXAMPLES = settings(max_examples=25, deadline=None)


@EXAMPLES
@given(kind=digits, levels=contrasts, size=st.integers(60, 300))
def test_colour_inverse_gives_the_same_digit(kind, levels, size):
    image = digit_image(kind, size=size, ink=levels[0], paper=levels[1])
    assert similarity(preprocess(image).pixels, preprocess(ImageOps.invert(image)).pixels) > 0.95


@EXAMPLES
@given(kind=digits, margins=st.tuples(*[st.integers(0, 150)] * 4), dx=st.integers(-25, 25),
       dy=st.integers(-15, 15))
def test_padding_and_shifting_give_the_same_digit(kind, margins, dx, dy):
    base = digit_image(kind, size=120)
    moved = digit_image(kind, size=120, box=(36 + dx, 24 + dy, 84 + dx, 96 + dy), stroke=7)
    padded = ImageOps.expand(moved, border=margins, fill=255)
    assert similarity(preprocess(base).pixels, preprocess(padded).pixels) > 0.9


@EXAMPLES
@given(kind=digits, factor=st.floats(0.4, 3.0))
def test_rescaling_the_canvas_gives_the_same_digit(kind, factor):
    image = digit_image(kind, size=150)
    size = max(20, round(150 * factor))
    resized = image.resize((size, size), Image.Resampling.LANCZOS)
    assert similarity(preprocess(image).pixels, preprocess(resized).pixels) > 0.9


@EXAMPLES
@given(level=st.integers(0, 255), size=st.tuples(st.integers(8, 400), st.integers(8, 400)))
def test_blank_images_have_no_ink(level, size):
    prepared = preprocess(Image.new("L", size, level))
    assert not prepared.has_ink and prepared.pixels.abs().sum() == 0


@EXAMPLES
@given(seed=st.integers(0, 2**32 - 1), base=st.integers(0, 255), spread=st.integers(10, 255),
       size=st.integers(32, 300), gaussian=st.booleans())
def test_uniform_noise_has_no_ink(seed, base, spread, size, gaussian):
    rng = np.random.default_rng(seed)
    shape = (size, size)
    noise = rng.normal(0, spread / 4, shape) if gaussian else rng.uniform(-1, 1, shape) * spread / 2
    image = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))
    assert not preprocess(image).has_ink


@EXAMPLES
@given(size=st.integers(120, 400), radius=st.integers(0, 2), x=st.floats(0.05, 0.95),
       y=st.floats(0.05, 0.95), dark=st.booleans())
def test_a_single_speck_has_no_ink(size, radius, x, y, dark):
    image = Image.new("L", (size, size), 255 if dark else 0)
    cx, cy = x * size, y * size
    ImageDraw.Draw(image).ellipse((cx - radius, cy - radius, cx + radius, cy + radius),
                                  fill=0 if dark else 255)
    assert not preprocess(image).has_ink


def test_a_hairline_digit_on_a_big_canvas_is_ink():
    """A 1-px "1" on a 1200-px page is under 0.1% of the pixels, and still a digit."""
    from PIL import Image, ImageDraw

    page = Image.new("L", (1200, 1200), 235)
    ImageDraw.Draw(page).line([(600, 350), (590, 800)], fill=30, width=1)
    prepared = preprocess(page)
    assert prepared.has_ink and prepared.pixels.sum() > 10
