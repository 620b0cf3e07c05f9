"""Named recipes: model + optimiser + schedule + batch size + epoch budget.

`digitlab train --recipe NAME` starts from a recipe; explicit flags override its values.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from digitlab.errors import ConfigError
from digitlab.training.config import TrainConfig


@dataclass(frozen=True)
class Recipe:
    """A name, a description and the TrainConfig fields that differ from its defaults
    (TrainConfig's defaults are the tutorial's settings)."""

    name: str
    description: str
    settings: dict[str, Any]

    @property
    def model(self) -> str:
        return str(self.settings["model"])


RECIPES: dict[str, Recipe] = {}
# Recipes of the line reader (digitlab.training.lines), which reads whole numbers: not a
# digit classifier, so not a Recipe of TrainConfig's trainer.
LINE_RECIPES = ("numbers",)


def register_recipe(recipe: Recipe) -> Recipe:
    if recipe.name in RECIPES:
        raise ValueError(f"recipe {recipe.name!r} is already registered")
    RECIPES[recipe.name] = recipe
    return recipe


register_recipe(
    Recipe(
        name="tutorial",
        description="the tutorial's CNN: Adadelta lr 1.0, StepLR γ 0.7, 14 epochs, batch 64",
        settings={"model": "cnn"},
    )
)
register_recipe(
    Recipe(
        name="tutorial-mlp",
        description="part 1's fully connected net 784→128→10 with the same optimiser and schedule",
        settings={"model": "mlp"},
    )
)
register_recipe(
    Recipe(
        name="robust",
        description="bncnn (24, 48, 96) trained on augmented digits (affine, stroke width, "
        "elastic) plus 12,000 re-drawn with an even pen, 6,000 typeset and 16,000 in styles "
        "MNIST lacks (crossed sevens, flagged ones, open fours, low-resolution scans, marker, "
        "shadows and table edges, handwriting fonts) and 10,000 pictures with no digit (learned "
        "as even odds), for real handwriting: AdamW + OneCycle, label smoothing, bf16 autocast "
        "where the CPU has it, 9 epochs",
        settings={
            "model": "bncnn", "model_args": {"widths": [24, 48, 96]},
            "optimizer": "adamw", "lr": 3e-3, "weight_decay": 5e-4,
            "scheduler": "onecycle", "label_smoothing": 0.1,
            "augment": {"rotation": 15.0, "scale": [0.75, 1.15], "shift": 0.12, "shear": 0.3,
                        "stroke": 0.9, "elastic": 1.0, "probability": 0.9},
            "channels_last": True, "amp": "auto",
            "printed": 6000, "redrawn": 12000, "styled": 16000, "junk": 10000,
            "batch_size": 128,
            "epochs": 9,
        },
    )
)

register_recipe(
    Recipe(
        name="fast",
        description="the tutorial's accuracy in seconds: fastcnn (stride-2 first layer, 30k "
        "parameters), AdamW lr 0.02 + OneCycle, label smoothing, batch 256, bf16 autocast where "
        "the CPU has it, 2 epochs",
        settings={
            "model": "fastcnn", "optimizer": "adamw", "lr": 2e-2, "weight_decay": 5e-4,
            "scheduler": "onecycle", "warmup": 0.2, "label_smoothing": 0.1,
            "channels_last": True, "amp": "auto",
            "batch_size": 256, "test_batch_size": 500, "epochs": 2,
            "log_interval": 50,
        },
    )
)

def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ConfigError(f"unknown recipe {name!r}; choose one of: {', '.join(RECIPES)}") from None


def build_config(recipe_name: str, **overrides: Any) -> TrainConfig:
    """A TrainConfig from a recipe, with every non-None override applied."""
    recipe = get_recipe(recipe_name)
    values = {"recipe": recipe.name, **copy.deepcopy(recipe.settings)}  # configs never share dicts
    if overrides.get("model") not in (None, recipe.model):
        values.pop("model_args", None)  # the recipe's model arguments belong to its own model
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(**values)
