"""MNIST's 28×28 field, and `Prepared`, what every pipeline hands the model.

MNIST (LeCun et al.) scaled each digit to fit a 20×20 box, then placed it in a 28×28 field with
its centre of mass at the middle; every digit pipeline here makes its views that way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

CANVAS = 28  # px: the side of the field a model sees
DIGIT_SIZE = 20  # px: the longer side of the digit's box inside the field
CENTRE = 14.0  # px: where the digit's centre of mass goes, on both axes


@dataclass
class Prepared:
    """The model's input (28×28 floats in [0, 1], ink bright) and what was done to get it."""

    pixels: torch.Tensor
    steps: dict[str, Any] = field(default_factory=dict)
    has_ink: bool = True
    # Other views of the same picture, by name, for a model to choose among (reading.robust.views).
    alternatives: dict[str, torch.Tensor] = field(default_factory=dict)


def empty_view(steps: dict[str, Any]) -> Prepared:
    """A blank field: what a pipeline returns when it found nothing to show."""
    return Prepared(torch.zeros(CANVAS, CANVAS), steps, has_ink=False)
