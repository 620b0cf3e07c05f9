"""Training from Python: `digitlab.train(recipe, out, ...)` does what `digitlab train` does."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from digitlab.data import resolve_root
from digitlab.errors import ConfigError
from digitlab.training import trainer
from digitlab.training.config import DataConfig, TrainConfig
from digitlab.training.recipes import build_config
from digitlab.training.runs import RunRecord, default_run_dir


def train_settings(
    recipe: str, *, data_dir: str | os.PathLike[str] | None = None, dataset: str = "mnist",
    train_limit: int | None = None, test_limit: int | None = None, val_split: int = 0,
    val_real: Sequence[str | os.PathLike[str]] = (), select_by: str | None = None,
    **overrides: Any,
) -> tuple[TrainConfig, DataConfig]:
    """The settings of a run: `recipe` with `overrides` (TrainConfig fields; None keeps the
    recipe's value) and the data options."""
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(TrainConfig)})
    if unknown:
        raise ConfigError(f"unknown training setting(s) {', '.join(map(repr, unknown))}; "
                          f"a recipe's settings are TrainConfig's fields")
    config = build_config(recipe, **overrides)
    data = DataConfig(root=resolve_root(data_dir), dataset=dataset, train_limit=train_limit,
                      test_limit=test_limit, val_split=val_split,
                      val_real=tuple(str(f) for f in val_real), select_by=select_by)
    return config, data


def train(
    recipe: str = "fast", out: str | os.PathLike[str] | None = None, *,
    data_dir: str | os.PathLike[str] | None = None, dataset: str = "mnist",
    train_limit: int | None = None, test_limit: int | None = None, val_split: int = 0,
    val_real: Sequence[str | os.PathLike[str]] = (), select_by: str | None = None,
    device: str = "auto", progress: bool = True, **overrides: Any,
) -> RunRecord:
    """Train `recipe` into the run folder `out` (default runs/<recipe>-<time>) and return its
    record: settings, per-epoch history, final accuracy (`record.accuracy`).

    Args:
        recipe: a named recipe (training/recipes.py): "fast", "tutorial", "tutorial-mlp", "robust".
        out: the run folder; it gets config.json, metrics.json, last.pt and best.pt
            (`digitlab.train` also draws the plot).
        data_dir: the data root (default: $DIGITLAB_DATA, else the user cache folder).
        dataset: "mnist" or another registered data set.
        train_limit, test_limit: use only the first N images of a split.
        val_split: hold out the last N training images to pick best.pt
            (digitlab.data.VALIDATION_SIZE is the usual N); 0 trains on all.
        val_real: folders of real labelled digits ("7_mine.png") scored every epoch, never
            trained on; metrics.json keeps each one's accuracy.
        select_by: what picks best.pt: "test", "val" or "real" (the mean over `val_real`);
            default: "val" with a `val_split`, else "test".
        device: "auto", "cpu", "cuda" or "mps".
        progress: draw progress bars.
        **overrides: any TrainConfig field (epochs=3, lr=0.01, model="cnn", ...).
    """
    config, data = train_settings(
        recipe, data_dir=data_dir, dataset=dataset, train_limit=train_limit,
        test_limit=test_limit, val_split=val_split, val_real=val_real, select_by=select_by,
        device=device, progress=progress, **overrides,
    )
    run_dir = Path(out) if out is not None else default_run_dir(config.recipe)
    return trainer.train(config, data, run_dir)
