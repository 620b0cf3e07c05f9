"""The JSON the service answers with: one pydantic model per response, plus the error body.

The readings' models are built from digitlab.predicting.results (fields, types, descriptions),
with the service's own field (`input_png`) added, so the two cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from pydantic import BaseModel, Field, create_model

from digitlab.predicting.results import DigitReading, NumberReading


def _not_none(annotation: Any) -> Any:
    """`X | None` → X."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        kept = [a for a in typing.get_args(annotation) if a is not type(None)]
        return kept[0] if len(kept) == 1 else typing.Union[tuple(kept)]  # noqa: UP007
    return annotation


def model_of(
    source: type, name: str, doc: str, *, exclude: tuple[str, ...] = (),
    required: tuple[str, ...] = (), types_: dict[str, Any] | None = None, **extra: Any,
) -> type[BaseModel]:
    """A pydantic model with the JSON fields of dataclass `source` (those not marked
    `"json": False` nor in `exclude`), their types (or `types_[name]`) and descriptions; fields
    in `required` lose their default and None; `extra` fields are (type, Field) as in create_model."""
    hints = typing.get_type_hints(source)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(source):
        if f.name in exclude or f.metadata.get("json", True) is False:
            continue
        annotation = (types_ or {}).get(f.name, hints[f.name])
        default: Any = ... if f.default is dataclasses.MISSING else f.default
        if f.name in required:
            annotation, default = _not_none(annotation), ...
        fields[f.name] = (annotation, Field(default, description=f.metadata.get("description")))
    return create_model(name, __doc__=doc, **fields, **extra)


INPUT_PNG = (str, Field(description="data:image/png;base64 URL of the 28×28 image the model saw"))

Prediction = model_of(DigitReading, "Prediction", "The answer for a single-digit image.",
                      exclude=("box",), required=("preprocess",), input_png=INPUT_PNG)
NumberDigit = model_of(DigitReading, "NumberDigit", "One digit of a number.",
                       exclude=("preprocess",), required=("box",), input_png=INPUT_PNG)
NumberPrediction = model_of(NumberReading, "NumberPrediction",
                            "The answer for an image of a number: its digits left to right.",
                            types_={"digits": list[NumberDigit]})  # type: ignore[valid-type]


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
