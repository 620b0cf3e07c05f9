"""Model registry: `create_model("cnn")`, `list_models()`.

Every model takes `num_classes` and returns log-probabilities (N × num_classes).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from digitlab.errors import ConfigError

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator that registers a model builder under `name`."""

    def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = builder
        return builder

    return wrap


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered model `name` with builder arguments `kwargs`."""
    try:
        builder = _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown model {name!r}; choose one of: {', '.join(list_models())}"
        ) from None
    try:
        return builder(**kwargs)
    except TypeError as e:
        raise ConfigError(f"bad arguments for model {name!r}: {e}") from None


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def model_arguments(name: str) -> dict[str, Any]:
    """The builder arguments of model `name` (besides num_classes) and their defaults."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}")
    parameters = inspect.signature(_REGISTRY[name]).parameters.values()
    return {p.name: p.default for p in parameters if p.name != "num_classes"}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# Explicit imports register the built-in models (no star-import side effects).
from digitlab.models import bncnn, cnn, fastcnn, mlp  # noqa: E402,F401
