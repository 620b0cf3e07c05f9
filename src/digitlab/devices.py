"""Which device torch runs on: one choice for training, evaluation, reports and reading."""

from __future__ import annotations

import torch

from digitlab.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda", "mps")  # what --device accepts


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA, then MPS, then CPU; an explicit name must be available."""
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (name == "cuda" and not cuda) or (name == "mps" and not mps):
        raise ConfigError(f"--device {name} was asked for but is not available; use --device cpu")
    return torch.device(name)
