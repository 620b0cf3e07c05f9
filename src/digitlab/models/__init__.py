"""Model registry: `create_model("cnn")`, `list_models()`.

Every model takes `num_classes` and returns log-probabilities (N × num_classes). The built-in
models live in modules of their own name and are imported when first built, so listing the
names (the command line's choices) does not import torch.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from digitlab.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

# digitlab.models.<name> registers the model <name>
BUILTIN_MODELS = ("bncnn", "cnn", "fastcnn", "mlp")
_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def _builder(name: str) -> Callable[..., nn.Module]:
    if name not in _REGISTRY and name in BUILTIN_MODELS:
        importlib.import_module(f"digitlab.models.{name}")
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}") from None


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
    builder = _builder(name)
    try:
        return builder(**kwargs)
    except TypeError as e:
        raise ConfigError(f"bad arguments for model {name!r}: {e}") from None


def list_models() -> list[str]:
    """Every model name: the built-in ones and any registered since."""
    return sorted(set(_REGISTRY) | set(BUILTIN_MODELS))


def model_arguments(name: str) -> dict[str, Any]:
    """The builder arguments of model `name` (besides num_classes) and their defaults."""
    parameters = inspect.signature(_builder(name)).parameters.values()
    return {p.name: p.default for p in parameters if p.name != "num_classes"}


def num_classes_of(name: str, args: dict[str, Any]) -> int:
    """How many classes model `name` built with builder arguments `args` tells apart."""
    if "num_classes" in args:
        return int(args["num_classes"])
    return int(inspect.signature(_builder(name)).parameters["num_classes"].default)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
