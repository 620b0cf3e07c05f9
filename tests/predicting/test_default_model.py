"""The model shipped inside the package: present, small, accurate, and robust to how people write."""

import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageOps

from digitlab.checkpoints.format import DEFAULT_MODEL, load_checkpoint
from digitlab.predicting.predictor import Predictor


@pytest.fixture(scope="module")
def predictor():
    return Predictor.from_checkpoint()


def test_shipped_model_is_small_and_documented():
    assert DEFAULT_MODEL.is_file() and DEFAULT_MODEL.stat().st_size < 2_000_000
    record = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())
    assert record["recipe"] == "robust" and record["test_accuracy"] >= 0.995
    checkpoint = load_checkpoint(DEFAULT_MODEL)
    assert checkpoint.optimizer_state is None and checkpoint.config["recipe"] == "robust"


def test_shipped_confidences_are_calibrated_and_keep_every_answer(predictor, mnist_root):
    from digitlab.data import load_split
    from digitlab.reports.calibration import expected_calibration_error

    assert 0 < predictor.temperature < 1  # label smoothing left it under-confident
    images, labels = load_split(mnist_root, train=False, limit=2000)
    calibrated = predictor.predict(images.float() / 255)
    raw = predictor.predict(images.float() / 255, calibrated=False)
    assert torch.equal(calibrated.argmax(1), raw.argmax(1))
    assert torch.allclose(predictor.with_temperature(raw), calibrated, atol=1e-5)
    assert expected_calibration_error(calibrated, labels) < 0.5 * expected_calibration_error(raw, labels)


def test_shipped_model_reads_mnist(predictor, mnist_root):
    from digitlab.data import load_split

    images, labels = load_split(mnist_root, train=False, limit=2000)
    predicted = predictor.predict(images.float() / 255).argmax(1)
    assert (predicted == labels).float().mean() >= 0.99


def draw(digit: str, size=(280, 280), box=(60, 40, 200, 240), width=16, ink=0, paper=255):
    """A canvas drawing of a 1, 4, 7 or 0 with thick strokes."""
    image = Image.new("L", size, paper)
    d = ImageDraw.Draw(image)
    x0, y0, x1, y1 = box
    if digit == "0":
        d.ellipse(box, outline=ink, width=width)
    elif digit == "1":
        d.line([((x0 + x1) / 2, y0), ((x0 + x1) / 2, y1)], fill=ink, width=width)
    elif digit == "7":
        d.line([(x0, y0), (x1, y0), (x0 + (x1 - x0) * 0.35, y1)], fill=ink, width=width, joint="curve")
    elif digit == "4":
        d.line([(x0 + (x1 - x0) * 0.6, y0), (x0, y0 + (y1 - y0) * 0.65), (x1, y0 + (y1 - y0) * 0.65)],
               fill=ink, width=width, joint="curve")
        d.line([(x0 + (x1 - x0) * 0.7, y0 + (y1 - y0) * 0.3), (x0 + (x1 - x0) * 0.7, y1)],
               fill=ink, width=width)
    return image


def answer(predictor, image):
    return predictor.read_digits([image])[0].digit


@pytest.mark.parametrize("digit", ["0", "1", "4", "7"])
def test_canvas_drawings_are_read(predictor, digit):
    assert answer(predictor, draw(digit)) == int(digit)


SETTINGS = settings(max_examples=15, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(digit=st.sampled_from("0147"))
def test_colour_inverse_gives_the_same_answer(predictor, digit):
    image = draw(digit)
    assert answer(predictor, image) == answer(predictor, ImageOps.invert(image))


@SETTINGS
@given(digit=st.sampled_from("0147"), left=st.integers(0, 300), top=st.integers(0, 200),
       right=st.integers(0, 300), bottom=st.integers(0, 200))
def test_padding_and_shifting_do_not_change_the_answer(predictor, digit, left, top, right, bottom):
    image = draw(digit)
    padded = ImageOps.expand(image, (left, top, right, bottom), fill=255)
    assert answer(predictor, padded) == answer(predictor, image)


@SETTINGS
@given(digit=st.sampled_from("0147"), factor=st.floats(0.3, 3.0))
def test_uniform_rescaling_does_not_change_the_answer(predictor, digit, factor):
    image = draw(digit)
    size = (max(1, round(280 * factor)),) * 2
    assert answer(predictor, image.resize(size, Image.Resampling.LANCZOS)) == answer(predictor, image)


@SETTINGS
@given(kind=st.sampled_from(["blank", "noise", "speck"]), grey=st.integers(0, 255),
       seed=st.integers(0, 99))
def test_no_ink_gives_no_digit(predictor, kind, grey, seed):
    rng = np.random.default_rng(seed)
    if kind == "blank":
        image = Image.new("L", (200, 150), grey)
    elif kind == "noise":
        image = Image.fromarray(rng.integers(0, 256, (150, 200), dtype=np.uint8))
    else:
        image = Image.new("L", (200, 150), 255)
        x, y = rng.integers(10, 190), rng.integers(10, 140)
        ImageDraw.Draw(image).ellipse((x, y, x + 3, y + 3), fill=0)
    reading = predictor.read_digits([image])[0]
    assert reading.digit is None and reading.reason


def test_numbers_are_read_left_to_right(predictor):
    canvas = Image.new("L", (760, 280), 255)
    for i, digit in enumerate("7041"):
        canvas.paste(draw(digit, size=(190, 280), box=(30, 40, 160, 240)), (i * 190, 0))
    number = predictor.read_number(canvas)
    assert number.number == "7041" and number.size == canvas.size
    readings = number.digits
    assert "".join(str(r.digit) for r in readings) == "7041"
    assert [r.box[0] for r in readings] == sorted(r.box[0] for r in readings)
    pixels = torch.stack([r.pixels for r in readings])
    assert pixels.shape == (4, 28, 28)
    # each digit's confidence is calibrated like a single digit's (the split used the raw ones)
    assert torch.allclose(torch.tensor([r.probabilities for r in readings]), predictor.predict(pixels),
                          atol=1e-5)


@pytest.mark.parametrize("text", ["53", "35", "151"])
def test_a_five_whose_bar_came_loose_sideways_is_read_as_one_digit(predictor, text):
    from tests.drawing import draw_digit

    kinds = ["5-loose" if c == "5" else c for c in text]
    canvas = Image.new("L", (40 + 150 * len(kinds), 200), 255)
    for i, kind in enumerate(kinds):
        draw_digit(canvas, kind, (30 + 150 * i, 40, 100 + 150 * i, 160), 8)
    assert predictor.read_number(canvas).text == text


# ---------------------------------------------------------------- pictures that fooled it (issue 14)


@pytest.mark.parametrize("digit", ["1", "2", "3"])
def test_a_digit_photographed_beside_a_table_edge_is_read(predictor, digit):
    from tests.drawing import table_edge_photo

    assert answer(predictor, table_edge_photo(digit)) == int(digit)  # was 5 (2, 3) or no digit (1)


@pytest.mark.parametrize("small, size, blur", [(10, 40, 1.5), (10, 32, 1.0), (12, 64, 2.5)])
def test_a_soft_digit_that_fills_a_small_frame_is_read(predictor, small, size, blur):
    from tests.drawing import soft_scan

    reading = predictor.read_digits([soft_scan("0", small, size, blur)])[0]
    assert reading.digit == 0  # background removal ate half of each stroke: was read as 3
    assert reading.preprocess["views"]["chosen"] in ("plain", "plain-levelled", "opening", "steps")


@pytest.mark.parametrize("kind, digit", [("7-crossed", 7), ("1-flagged", 1)])
@pytest.mark.parametrize("stroke", [8, 16])
def test_continental_sevens_and_ones_are_read(predictor, kind, digit, stroke):
    from tests.drawing import digit_image

    assert answer(predictor, digit_image(kind, size=200, stroke=stroke)) == digit


@pytest.mark.parametrize("gap", [0, 1])
def test_a_small_ten_on_a_28_px_canvas_is_read(predictor, gap):
    from tests.drawing import small_number

    image = small_number("10", height=18, gap=gap, canvas=(28, 28), stroke=2)
    assert predictor.read_number(image).text == "10"  # was 70


@pytest.mark.parametrize("text, height, stroke, gap, canvas", [
    ("13", 24, 4, -1, (40, 32)), ("31", 18, 3, 0, (32, 28)), ("23", 18, 3, 0, (32, 28)),
])
def test_touching_digits_written_small_with_a_broad_pen_are_split(predictor, text, height, stroke,
                                                                  gap, canvas):
    from tests.drawing import small_number

    image = small_number(text, height=height, gap=gap, canvas=canvas, stroke=stroke)
    assert predictor.read_number(image).text == text  # was 8, 3 and 8: read as one digit
