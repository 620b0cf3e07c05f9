"""The optimiser and learning-rate schedule a TrainConfig names.

torch.optim wraps `add_param_group`, `zero_grad`, `state_dict`, `load_state_dict` and `step`
in functions that tell torch.compile how to treat them, and each of those wrappers imports
torch._dynamo on its first call: ~1.2 s of start-up (dynamo imports sympy and onnx) and more
at exit, for a run that never compiles. The optimisers made here call the functions torch
wraps (what the wrappers themselves call outside torch.compile), so nothing imports dynamo;
the update is torch's own, bit for bit. Where dynamo is already loaded (a caller compiles
something), the wrappers are used as torch ships them.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Any

import torch

from digitlab.errors import ConfigError
from digitlab.training.config import OPTIMIZERS, SCHEDULERS, TrainConfig


def _dynamo_loaded() -> bool:
    return "torch._dynamo" in sys.modules


def _plain(method: Callable[..., Any]) -> Callable[..., Any] | None:
    """The function torch's wrapper around `method` calls (functools.wraps keeps it as
    `__wrapped__`); None where there is no wrapper, or dynamo is loaded and it should run."""
    if _dynamo_loaded():
        return None
    return getattr(method, "__wrapped__", None)


class _WithoutDynamo(torch.optim.Optimizer):
    """Mix-in before a torch.optim class: its methods, minus the wrappers that import dynamo."""

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        plain = _plain(super().add_param_group)
        plain(self, param_group) if plain else super().add_param_group(param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        plain = _plain(super().zero_grad)
        plain(self, set_to_none) if plain else super().zero_grad(set_to_none)

    def state_dict(self) -> dict[str, Any]:
        plain = _plain(super().state_dict)
        return plain(self) if plain else super().state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        plain = _plain(super().load_state_dict)
        plain(self, state_dict) if plain else super().load_state_dict(state_dict)

    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        if _dynamo_loaded():
            return super().step(closure)  # type: ignore[no-any-return]
        # What torch's step wrapper does outside torch.compile: no autograd graph for the
        # update (unless the optimiser is `differentiable`), then the update itself.
        update = inspect.unwrap(super().step)  # under the profiler hook Optimizer.__init__ adds
        previous = torch.is_grad_enabled()
        try:
            torch.set_grad_enabled(self.defaults["differentiable"])
            return update(self, closure)  # type: ignore[no-any-return]
        finally:
            torch.set_grad_enabled(previous)


class Adadelta(_WithoutDynamo, torch.optim.Adadelta):
    """torch.optim.Adadelta without the dynamo import."""


class SGD(_WithoutDynamo, torch.optim.SGD):
    """torch.optim.SGD without the dynamo import."""


class Adam(_WithoutDynamo, torch.optim.Adam):
    """torch.optim.Adam without the dynamo import."""


class AdamW(_WithoutDynamo, torch.optim.AdamW):
    """torch.optim.AdamW without the dynamo import."""


def create_optimizer(config: TrainConfig, params: Any) -> torch.optim.Optimizer:
    name, lr, wd = config.optimizer, config.lr, config.weight_decay
    if name == "adadelta":
        return Adadelta(params, lr=lr, weight_decay=wd)
    if name == "sgd":
        return SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=wd)
    if name == "adam":
        return Adam(params, lr=lr, weight_decay=wd)
    if name == "adamw":
        return AdamW(params, lr=lr, weight_decay=wd)
    raise ConfigError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")


def create_scheduler(
    config: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The learning-rate schedule; `onecycle` steps per batch, `step` once per epoch."""
    if config.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=config.gamma)
    if config.scheduler == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.lr, epochs=config.epochs, steps_per_epoch=steps_per_epoch,
            pct_start=config.warmup,
        )
    if config.scheduler == "none":
        return None
    raise ConfigError(
        f"unknown scheduler {config.scheduler!r}; choose one of: {', '.join(SCHEDULERS)}"
    )
