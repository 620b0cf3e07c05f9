"""The one normalisation every model input goes through: training, reading and export."""

from __future__ import annotations

import torch


def normalise(pixels: torch.Tensor, mean: float, std: float, max_value: float = 1.0) -> torch.Tensor:
    """(pixels / max_value - mean) / std, as a float tensor; `pixels` is left alone.

    `mean` and `std` are those of the training images scaled to [0, 1] (the checkpoint's);
    `max_value` is what full intensity is in `pixels`: 1 for floats, 255 for uint8, which may
    be passed as they are (the scale is folded into the constants). One subtract and one
    divide: it traces into an exported graph and costs the training loop one temporary.
    """
    return (pixels - mean * max_value).div_(std * max_value)
