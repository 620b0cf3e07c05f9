"""Part 1's fully connected net: 784 → 128 → 10 by default, layers and activation configurable."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from digitlab.models import register_model

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
}


class MLP(nn.Module):
    """Flatten, then Linear layers named fc1…fcN with an activation between them."""

    def __init__(
        self,
        num_classes: int = 10,
        hidden: Sequence[int] = (128,),
        activation: str = "relu",
        in_features: int = 28 * 28,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise TypeError(f"activation must be one of {sorted(ACTIVATIONS)}")
        self.activation = ACTIVATIONS[activation]
        sizes = [in_features, *hidden, num_classes]
        self.layers = len(sizes) - 1
        for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:], strict=False), start=1):
            self.add_module(f"fc{i}", nn.Linear(n_in, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)
        for i in range(1, self.layers + 1):
            x = getattr(self, f"fc{i}")(x)
            if i < self.layers:
                x = self.activation(x)
        return F.log_softmax(x, dim=1)


@register_model("mlp")
def build_mlp(
    num_classes: int = 10, hidden: Sequence[int] = (128,), activation: str = "relu"
) -> MLP:
    return MLP(num_classes=num_classes, hidden=tuple(hidden), activation=activation)
