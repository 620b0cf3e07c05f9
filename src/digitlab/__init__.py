"""digitlab: train, evaluate, serve and explain handwritten-digit recognisers."""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from digitlab.training.runs import RunRecord

try:
    __version__ = version("digitlab")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "train"]


def train(recipe: str = "fast", out: str | os.PathLike[str] | None = None, **options: Any) -> RunRecord:
    """Train `recipe` into the run folder `out`; see digitlab.training.api.train for the options."""
    from digitlab.training.api import train as train_recipe  # torch loads on the first call

    return train_recipe(recipe, out, **options)
