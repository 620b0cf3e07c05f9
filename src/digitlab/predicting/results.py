"""What a model read: `DigitReading` (one image, or one digit of a number) and `NumberReading`.

Defined once: the Predictor returns them, the CLI prints them (`str()`, `describe()`),
`classify --json` and the service serialise them with `to_dict()`, and the service's response
schemas are built from these fields, each described in its metadata (digitlab.service.schemas).
Fields whose metadata says `"json": False` (the pixels) stay out of the JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

ROUND = 6  # decimals of probabilities in JSON


def doc(description: str) -> dict[str, str]:
    """Field metadata: its description in the JSON schema."""
    return {"description": description}


@dataclass(frozen=True)
class Candidate:
    """One of the likeliest classes."""

    digit: int = field(metadata=doc("the class index"))
    label: str = field(metadata=doc("the class name"))
    probability: float = field(metadata=doc("its probability"))


@dataclass(frozen=True)
class DigitReading:
    """What the model read in one image, or in one digit of a number."""

    digit: int | None = field(metadata=doc("the digit (class index), or null when there is none"))
    label: str | None = field(metadata=doc("the class name of `digit`"))
    confidence: float = field(metadata=doc("probability of the likeliest class (0 when there is no ink)"))
    no_digit: bool = field(metadata=doc("true when there is no ink or the model is not confident"))
    pixels: torch.Tensor = field(repr=False, compare=False, metadata={
        "description": "the 28×28 image the model saw, floats in [0, 1], ink bright", "json": False})
    reason: str | None = field(default=None, metadata=doc("why there is no digit, when there is none"))
    probabilities: tuple[float, ...] | None = field(default=None, metadata=doc(
        "one probability per class, summing to 1; null when there was no ink"))
    top_k: tuple[Candidate, ...] = field(default=(), metadata=doc("the likeliest classes, best first"))
    box: tuple[int, ...] | None = field(default=None, metadata=doc(
        "[x0, y0, x1, y1] in the image's pixels (x1, y1 exclusive): where a digit of a number is"))
    preprocess: dict[str, Any] | None = field(default=None, metadata=doc(
        "what preprocessing found and did (steps)"))

    @classmethod
    def of(
        cls, probabilities: torch.Tensor | None, classes: Sequence[str], pixels: torch.Tensor, *,
        reason: str | None = None, top_k: int = 1, box: Sequence[int] | None = None,
        preprocess: dict[str, Any] | None = None,
    ) -> DigitReading:
        """A reading from the model's probabilities (None: nothing was classified); with a
        `reason` the answer is no digit, though the probabilities are still reported."""
        digit = None if reason or probabilities is None else int(probabilities.argmax())
        candidates: tuple[Candidate, ...] = ()
        if probabilities is not None:
            values, indices = probabilities.topk(min(top_k, len(probabilities)))
            candidates = tuple(Candidate(int(i), classes[int(i)], float(v))
                               for v, i in zip(values, indices, strict=True))
        return cls(
            digit=digit, label=classes[digit] if digit is not None else None,
            confidence=float(probabilities.max()) if probabilities is not None else 0.0,
            no_digit=digit is None, pixels=pixels, reason=reason,
            probabilities=tuple(probabilities.tolist()) if probabilities is not None else None,
            top_k=candidates, box=tuple(box) if box is not None else None,
            preprocess=preprocess,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: what has no value (no reason, box, probabilities or steps) is left out."""
        out: dict[str, Any] = {"digit": self.digit, "label": self.label,
                               "confidence": round(self.confidence, ROUND), "no_digit": self.no_digit}
        if self.reason:
            out["reason"] = self.reason
        if self.box is not None:
            out["box"] = list(self.box)
        if self.probabilities is not None:
            out["probabilities"] = [round(p, ROUND) for p in self.probabilities]
            out["top_k"] = [{"digit": c.digit, "label": c.label, "probability": round(c.probability, ROUND)}
                            for c in self.top_k]
        if self.preprocess is not None:
            out["preprocess"] = self.preprocess
        return out

    def describe(self, nothing: str = "no digit") -> str:
        """One line for people: the likeliest classes with their probabilities, or why none.

        `nothing` is what no answer is called ("nothing recognised" suits a model of objects).
        """
        if self.no_digit:
            return f"{nothing} ({self.reason})"
        return ", ".join(f"{c.label} {100 * round(c.probability, ROUND):.1f}%" for c in self.top_k)

    def __str__(self) -> str:
        return self.describe()


@dataclass(frozen=True)
class NumberReading:
    """The digits of a handwritten number, left to right."""

    number: str | None = field(metadata=doc(
        "the digits read, or null when any is uncertain or none found"))
    text: str = field(metadata=doc("the digits read, with '?' for uncertain ones"))
    no_digit: bool = field(metadata=doc("true when no digit was found"))
    confidence: float = field(metadata=doc("the lowest confidence of the digits"))
    size: tuple[int, int] = field(metadata=doc("[width, height] of the image, for drawing the boxes"))
    digits: tuple[DigitReading, ...] = field(metadata=doc("each digit, left to right, with its box"))

    @classmethod
    def of(cls, digits: Sequence[DigitReading], size: tuple[int, int]) -> NumberReading:
        text = "".join(d.label if d.label is not None else "?" for d in digits)
        return cls(
            number=text if digits and "?" not in text else None, text=text, no_digit=not digits,
            confidence=min((d.confidence for d in digits), default=0.0), size=size, digits=tuple(digits),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "text": self.text, "no_digit": self.no_digit,
                "confidence": round(self.confidence, ROUND), "size": list(self.size),
                "digits": [d.to_dict() for d in self.digits]}

    def describe(self, nothing: str = "no digit") -> str:
        """One line for people: the number, then each digit with its confidence."""
        digits = " ".join(f"{d.label or '?'} {100 * round(d.confidence, ROUND):.0f}%" for d in self.digits)
        return f"{self.number or 'no number'} ({self.text}: {digits})" if digits else "no digit"

    def __str__(self) -> str:
        return self.describe()
