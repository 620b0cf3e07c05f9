"""The optimiser and learning-rate schedule a TrainConfig names."""

from __future__ import annotations

from typing import Any

import torch

from digitlab.errors import ConfigError
from digitlab.training.config import OPTIMIZERS, SCHEDULERS, TrainConfig


def create_optimizer(config: TrainConfig, params: Any) -> torch.optim.Optimizer:
    name, lr, wd = config.optimizer, config.lr, config.weight_decay
    if name == "adadelta":
        return torch.optim.Adadelta(params, lr=lr, weight_decay=wd)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=wd)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
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
