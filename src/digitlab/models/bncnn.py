"""A small batch-norm CNN: pools early, so it is cheap on CPU and robust when augmented.

Three stages of (conv, batch norm, ReLU, 2×2 max-pool) on 28 → 14 → 7 → 3, then a linear
classifier. With the default widths (32, 64, 128) it has about 105k parameters (~0.4 MB).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from digitlab.models import register_model


def conv_stage(c_in: int, c_out: int, kernel: int, stride: int = 1, pool: bool = True) -> nn.Sequential:
    """conv → batch norm → ReLU (→ 2×2 max-pool): the building block of bncnn and fastcnn."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        *([nn.MaxPool2d(2)] if pool else []),
    )


class BNCNN(nn.Module):
    def __init__(
        self,
        num_classes: int = 10,
        widths: Sequence[int] = (32, 64, 128),
        dropout: float = 0.1,
        image_size: int = 28,
    ) -> None:
        super().__init__()
        kernels = [5] + [3] * (len(widths) - 1)  # a wider first kernel sees whole stroke widths
        channels = [1, *widths]
        self.features = nn.Sequential(
            *(conv_stage(channels[i], channels[i + 1], kernels[i]) for i in range(len(widths)))
        )
        side = image_size
        for _ in widths:
            side //= 2
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(widths[-1] * side * side, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.features(x), 1)
        return F.log_softmax(self.classifier(self.dropout(x)), dim=1)


@register_model("bncnn")
def build_bncnn(
    num_classes: int = 10, widths: Sequence[int] = (32, 64, 128), dropout: float = 0.1
) -> BNCNN:
    return BNCNN(num_classes=num_classes, widths=tuple(widths), dropout=dropout)
