"""Occlusion explanations: the strokes that decide an answer weigh for it, blank paper weighs
nothing, and the heat lands on the digit in the original picture."""

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from digitlab.cli import main
from digitlab.predicting.explain import PATCH, occlusion_map, overlay
from digitlab.predicting.predictor import Predictor


@pytest.fixture(scope="module")
def model():
    return Predictor.load()


def seven(size=(300, 200), offset=(60, 20)):
    picture = Image.new("L", size, 255)
    x, y = offset
    ImageDraw.Draw(picture).line([(x, y + 20), (x + 110, y + 20), (x + 45, y + 160)], fill=0, width=14)
    return picture


def test_a_pixel_that_decides_weighs_and_blank_paper_does_not():
    # a toy model: the answer is class 1 when the top-left corner has ink
    def probabilities(x):
        corner = x[:, :6, :6].mean(dim=(1, 2))
        return torch.stack([1 - corner * 0.9, corner * 0.9 + 0.05], dim=1)

    pixels = torch.zeros(28, 28)
    pixels[:6, :6] = 1
    weights = occlusion_map(probabilities, pixels, target=1)
    assert weights.shape == (28, 28) and weights[:4, :4].min() > 0
    assert weights[PATCH + 6:, PATCH + 6:].abs().max() == 0  # far from the ink: no weight


def test_the_heat_lies_on_the_digit_in_the_original_picture(model):
    picture = seven()
    reading = model.read(picture)
    explanation = model.explain(picture, reading)
    assert explanation is not None and explanation.label == "7" == reading.label
    assert explanation.picture_box == tuple(reading.preprocess["ink_box"])
    assert explanation.weights.max() > 0 and explanation.weights.shape == (28, 28)
    layer = explanation.layer(max_side=None)
    assert layer.size == picture.size and layer.mode == "RGBA"
    x0, y0, x1, y1 = layer.getchannel("A").getbbox()
    ink = reading.preprocess["ink_box"]
    assert x0 >= ink[0] - 2 and y0 >= ink[1] - 2 and x1 <= ink[2] + 2 and y1 <= ink[3] + 2
    red = np.asarray(layer)[..., 0].astype(int) > np.asarray(layer)[..., 2]
    assert red[np.asarray(layer)[..., 3] > 60].mean() > 0.5  # mostly evidence for the 7
    shown = overlay(picture, [explanation], max_side=150)
    assert shown.size == (150, 100) and shown.mode == "RGB"
    assert explanation.view_overlay(scale=3).size == (84, 84)


def test_no_ink_is_not_explained_and_a_tensor_is(model):
    assert model.explain(Image.new("L", (40, 40), 255)) is None
    small = model.explain(torch.zeros(28, 28).index_fill_(1, torch.tensor([13, 14]), 1.0))
    assert small is not None and small.label == "1" and small.size == (28, 28)


def test_classify_show_draws_the_explanation(tmp_path, capsys):
    seven().save(tmp_path / "seven.png")
    assert main(["classify", str(tmp_path / "seven.png"), "--show", str(tmp_path / "show")]) == 0
    (figure,) = (tmp_path / "show").iterdir()
    with Image.open(figure) as image:
        assert image.height == round(6.4 * 120)  # the taller figure: input, then why
