"""Reading whole numbers with the shipped line reader: amounts as real fields hold them."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from digitlab.checkpoints.lines import load_line_checkpoint
from digitlab.cli import main
from digitlab.errors import CheckpointError
from digitlab.predicting.line_reader import SHIPPED, LineReader
from digitlab.predicting.predictor import Predictor
from digitlab.writing.lines import STYLE, GlyphBank, render_line

# An amount as cheques hold it: a thousands separator, a dash after it, a printed baseline,
# zeros written in one run (touching), no background that makes it trivial.
AMOUNT = dataclasses.replace(STYLE, trailing=1.0, separators=1.0, baseline=1.0, gap=(-0.12, -0.03),
                             leading=0.0, light_on_dark=0.0, blank=0.0, scan_height=(36, 60))


@pytest.fixture(scope="module")
def bank(mnist_root: Path) -> GlyphBank:
    from digitlab import data

    images, labels = data.load_split(mnist_root, train=True)
    return GlyphBank(images.numpy(), labels.numpy(), fonts=[])


@pytest.fixture(scope="module")
def reader() -> Predictor:
    return Predictor.from_checkpoint()


def test_an_amount_with_separator_dash_baseline_and_touching_zeros_is_read(bank, reader):
    rng = np.random.default_rng(2024)
    fields = [render_line(bank, rng, AMOUNT, digits=[1, 5, 0, 0, 0]) for _ in range(10)]
    readings = reader.read_numbers([image for image, _ in fields])
    assert [label for _, label in fields] == ["15000"] * 10
    right = [r.number == "15000" for r in readings]
    assert sum(right) >= 9, [r.text for r in readings]


def test_each_digit_has_a_probability_and_a_box_left_to_right(bank, reader):
    image, label = render_line(bank, np.random.default_rng(7), AMOUNT, digits=[3, 2, 0, 7])
    reading = reader.read_number(image)
    assert reading.number == label
    lefts = [d.box[0] for d in reading.digits]
    assert lefts == sorted(lefts)
    for d in reading.digits:
        x0, y0, x1, y1 = d.box
        assert 0 <= x0 < x1 <= image.width and 0 <= y0 < y1 <= image.height
        assert sum(d.probabilities) == pytest.approx(1, abs=1e-4) and d.confidence > 0.5


def test_a_textured_field_without_writing_is_no_digit(bank, reader):
    rng = np.random.default_rng(11)
    blank = dataclasses.replace(AMOUNT, trailing=0.0, baseline=0.0)
    fields = [render_line(bank, rng, blank, digits=[])[0] for _ in range(10)]
    readings = reader.read_numbers(fields)
    assert [r.no_digit for r in readings] == [True] * 10, [r.text for r in readings]
    assert all(str(r) == "no digit" for r in readings)


def test_the_segmenting_reader_is_still_there(reader):
    image = Image.new("L", (120, 60), 255)
    assert reader.read_number(image, reader="segment").no_digit


def test_a_foreign_line_model_is_refused_in_one_line(tmp_path):
    path = tmp_path / "not-a-line-reader.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="not a line reader's checkpoint"):
        LineReader.load(path)
    damaged = load_line_checkpoint(SHIPPED)
    state = {**damaged.state_dict}
    name = next(iter(state))
    payload = torch.load(SHIPPED, weights_only=True)
    payload["state_dict"] = {**state, name: state[name] + 1}
    torch.save(payload, tmp_path / "flipped.pt")
    with pytest.raises(CheckpointError, match="damaged"):
        LineReader.load(tmp_path / "flipped.pt")


def test_classify_number_reads_with_the_line_reader_and_says_which(bank, tmp_path, capsys):
    image, label = render_line(bank, np.random.default_rng(5), AMOUNT, digits=[4, 4, 5, 0])
    path = tmp_path / "amount.png"
    image.save(path)
    assert main(["classify", "--number", "--json", "--jobs", "1", str(path)]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["number"] == label
    assert main(["classify", "--number", "--line-model", str(tmp_path / "missing.pt"), str(path)]) == 1
    assert "does not exist" in capsys.readouterr().err
