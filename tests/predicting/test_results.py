"""Readings: built from probabilities, judged, and serialised with the keys of `classify --json`."""

import dataclasses
import json

import pytest
import torch

from digitlab.predicting.results import DigitReading, NumberReading

CLASSES = [str(d) for d in range(10)]
PIXELS = torch.zeros(28, 28)


def probabilities(winner: int, p: float) -> torch.Tensor:
    rest = (1 - p) / 9
    return torch.tensor([p if i == winner else rest for i in range(10)])


def test_a_confident_reading_and_its_json():
    reading = DigitReading.of(probabilities(7, 0.9), CLASSES, PIXELS, top_k=2,
                              preprocess={"pipeline": "robust"})
    assert (reading.digit, reading.label, reading.no_digit) == (7, "7", False)
    assert reading.confidence == pytest.approx(0.9) and len(reading.probabilities) == 10
    out = reading.to_dict()
    assert list(out) == ["digit", "label", "confidence", "no_digit", "probabilities", "top_k", "preprocess"]
    assert out["top_k"][0] == {"digit": 7, "label": "7", "probability": 0.9}
    assert json.loads(json.dumps(out)) == out
    assert str(reading).startswith("7 90.0%, ") and str(reading).endswith(" 1.1%")  # a tie for second
    with pytest.raises(dataclasses.FrozenInstanceError):
        reading.digit = 1  # type: ignore[misc]


def test_no_digit_keeps_the_probabilities_and_says_why():
    unsure = DigitReading.of(probabilities(3, 0.4), CLASSES, PIXELS, reason="confidence 0.40 is below 0.50")
    assert unsure.no_digit and unsure.digit is None and unsure.label is None
    assert "probabilities" in unsure.to_dict() and unsure.to_dict()["reason"].startswith("confidence")
    assert unsure.describe("nothing recognised") == "nothing recognised (confidence 0.40 is below 0.50)"
    blank = DigitReading.of(None, CLASSES, PIXELS, reason="no ink")
    assert blank.confidence == 0 and "probabilities" not in blank.to_dict() and blank.top_k == ()


def test_a_number_is_its_digits_left_to_right():
    digits = [DigitReading.of(probabilities(d, 0.8 + 0.05 * i), CLASSES, PIXELS,
                              box=[10 * i, 0, 10 * i + 8, 9]) for i, d in enumerate((2, 7, 4))]
    number = NumberReading.of(digits, (40, 10))
    assert (number.number, number.text, number.no_digit) == ("274", "274", False)
    assert number.confidence == pytest.approx(0.8)
    out = number.to_dict()
    assert out["size"] == [40, 10] and out["digits"][1]["box"] == [10, 0, 18, 9]
    assert "preprocess" not in out["digits"][0]
    assert str(number) == "274 (274: 2 80% 7 85% 4 90%)"
    unsure = NumberReading.of([digits[0], DigitReading.of(None, CLASSES, PIXELS, reason="no ink")], (40, 10))
    assert unsure.number is None and unsure.text == "2?"
    empty = NumberReading.of([], (40, 10))
    assert empty.no_digit and empty.number is None and empty.confidence == 0 and str(empty) == "no digit"
