"""The tutorial's CNN (PyTorch's official MNIST example), layer for layer.

Parameter names conv1/conv2/fc1/fc2 match the tutorial's `Net`, so state_dicts interchange.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from digitlab.models import register_model


class Net(nn.Module):
    """conv 3×3 (32) → conv 3×3 (64) → max-pool 2 → dropout → fc 128 → dropout → fc."""

    def __init__(self, num_classes: int = 10, image_size: int = 28) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        side = (image_size - 2 - 2) // 2  # two unpadded 3×3 convolutions, then a 2×2 pool
        self.fc1 = nn.Linear(64 * side * side, 128)
        self.fc2 = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = self.dropout1(F.max_pool2d(x, 2))
        x = self.dropout2(F.relu(self.fc1(torch.flatten(x, 1))))
        return F.log_softmax(self.fc2(x), dim=1)


@register_model("cnn")
def build_cnn(num_classes: int = 10) -> Net:
    return Net(num_classes=num_classes)
