"""The JSON the service answers with: one pydantic model per response, plus the error body."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class TopK(BaseModel):
    digit: int
    label: str
    probability: float


class DigitReading(BaseModel):
    """What the model read in one image or one digit of a number."""

    digit: int | None = Field(description="the digit, or null when there is none")
    label: str | None = Field(description="the class name of `digit`")
    confidence: float = Field(description="probability of the likeliest class (0 when there is no ink)")
    no_digit: bool = Field(description="true when there is no ink or the model is not confident")
    reason: str | None = Field(None, description="why there is no digit, when there is none")
    probabilities: list[float] | None = Field(
        None, description="one probability per class, summing to 1; null when there was no ink"
    )
    top_k: list[TopK] = Field(default_factory=list, description="the likeliest classes, best first")
    input_png: str = Field(description="data:image/png;base64 URL of the 28×28 image the model saw")


class Prediction(DigitReading):
    """The answer for a single-digit image."""

    preprocess: dict[str, Any] = Field(description="what preprocessing found and did (steps)")


class NumberDigit(DigitReading):
    """One digit of a number."""

    box: list[int] = Field(description="[x0, y0, x1, y1] in the uploaded image's pixels (x1, y1 exclusive)")


class NumberPrediction(BaseModel):
    """The answer for an image of a number: its digits left to right."""

    number: str | None = Field(description="the digits read, or null when any is uncertain or none found")
    text: str = Field(description="the digits read, with '?' for uncertain ones")
    no_digit: bool = Field(description="true when no digit was found")
    confidence: float = Field(description="the lowest confidence of the digits")
    size: list[int] = Field(description="[width, height] of the uploaded image, for drawing the boxes")
    digits: list[NumberDigit]


class ModelInfo(BaseModel):
    """The model this server answers with."""

    name: str = Field(description="architecture, e.g. bncnn")
    recipe: str | None = Field(description="training recipe, when the checkpoint records one")
    dataset: str = Field("mnist", description="the data set it was trained on, e.g. fashion-mnist")
    test_accuracy: float | None = Field(description="test accuracy on that data set, recorded at training")
    digitlab_version: str = Field(description="version of the digitlab serving it")
    trained_with: str = Field(description="version of the digitlab that trained it")
    classes: list[str]
    min_confidence: float = Field(description="below this the answer is 'no digit'")
    temperature: float = Field(1.0, description="confidences are softmax(logits / temperature); "
                                                "1 is the model as trained")


class Health(BaseModel):
    status: str = "ok"


class ErrorBody(BaseModel):
    """Every error the service returns."""

    error: str = Field(description="stable machine-readable code, e.g. payload_too_large")
    detail: str = Field(description="what went wrong, for people")
