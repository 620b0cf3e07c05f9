"""The types of a study spec's values, checked when the spec is read: a base setting or a factor's
value of the wrong type is a one-line error then, not a traceback (or a failed run) later."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from digitlab.errors import ConfigError
from digitlab.training.config import TrainConfig


def check_factor_type(name: str, label: str, value: Any) -> None:
    """A factor's value must have its TrainConfig field's type (a model argument is not checked)."""
    fields = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    default = fields.get(name)
    if default is None or default is dataclasses.MISSING:
        return
    ok = {bool: lambda v: isinstance(v, bool), int: lambda v: type(v) is int,
          float: lambda v: type(v) in (int, float), str: lambda v: isinstance(v, str)}
    if not ok[type(default)](value):
        raise ConfigError(f"factor {name}: {label!r} is not a {type(default).__name__}")


# Settings with a default of None or none at all: the type each must have when given.
BASE_TYPES: dict[str, type] = {"model": str, "model_args": dict, "augment": dict}


def base_problems(base: dict[str, Any]) -> list[str]:
    """One line per base setting whose value has the wrong type for its TrainConfig field
    (batch_size = 1.5, epochs = 1e9, model_args = "x"), or is not a finite number."""
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    problems = []
    for name, value in base.items():
        wanted = BASE_TYPES.get(name) or type(defaults.get(name))
        if wanted in (type(None), type(dataclasses.MISSING)):
            continue
        if not _has_type(value, wanted):
            words = TYPE_WORDS.get(wanted, wanted.__name__)
            problems.append(f"base setting {name} = {value!r} is not {words}")
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(f"base setting {name} = {value!r} is not a finite number")
    return problems


TYPE_WORDS = {int: "a whole number", float: "a number", bool: "true or false", str: "text",
              dict: "a table"}


def _has_type(value: Any, wanted: type) -> bool:
    if wanted is float:
        return type(value) in (int, float)
    if wanted is int:
        return type(value) is int
    return isinstance(value, wanted)
