"""What a checkpoint's numbers must satisfy: a digest of its tensors, finite weights, sane metadata.

`weights_digest` is stored in every checkpoint digitlab writes and checked when one is read, so
a file changed on disk or in transfer (a flipped bit inside a tensor loads silently otherwise)
is refused instead of read as a different model. The other checks catch what a digest cannot:
a model that diverged before it was saved, and metadata that would break every reading.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any

import torch

from digitlab.errors import ModelOutputNotFinite

DIGEST_ALGORITHM = "sha256"


def weights_digest(state: Mapping[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        # a uint8 view reads any dtype's bytes (bfloat16 too, which numpy lacks)
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def non_finite_tensors(state: Mapping[str, torch.Tensor]) -> list[str]:
    """The names of the floating-point tensors holding a NaN or an infinity."""
    return [name for name, tensor in state.items()
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]


def describe_names(names: list[str]) -> str:
    """`'fc1.weight', 'fc1.bias', 'fc2.weight' and 2 more`: short enough for one line."""
    shown = ", ".join(repr(n) for n in names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def shape_problem(state: Mapping[str, torch.Tensor],
                  expected: Mapping[str, torch.Tensor]) -> str | None:
    """Why the tensors of `state` do not fit a model whose state_dict is `expected` (None: they do)."""
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    if missing or extra:
        parts = ([f"missing {describe_names(missing)}"] if missing else []) + (
            [f"unexpected {describe_names(extra)}"] if extra else [])
        return "; ".join(parts)
    for name, reference in expected.items():
        if tuple(state[name].shape) != tuple(reference.shape):
            return (f"{name!r} has shape {tuple(state[name].shape)}, the model needs "
                    f"{tuple(reference.shape)}")
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# Class names are shown on the page, in reports and on terminals: they are data, and a name is
# a word or two ("T-shirt/top"), not a paragraph, a line break or a terminal escape.
MAX_CLASS_NAME = 32  # characters


def class_names_problem(classes: Any, num_classes: int) -> str | None:
    """What is wrong with a model's class names (None: nothing): `num_classes` distinct,
    non-empty, printable names (no control or format characters) of at most MAX_CLASS_NAME."""
    if (not isinstance(classes, list) or not all(isinstance(c, str) for c in classes)
            or len(set(classes)) != len(classes) or len(classes) != num_classes):
        return (f"classes must be {num_classes} distinct names, one per model output, "
                f"not {ascii(classes)[:80]}")
    for index, name in enumerate(classes):
        if not name or len(name) > MAX_CLASS_NAME or not name.isprintable():
            return (f"class {index} {ascii(name)[:60]} is not a name: class names are 1 to "
                    f"{MAX_CLASS_NAME} printable characters, without control characters")
    return None


def metadata_problem(*, classes: Any, num_classes: int, mean: Any, std: Any,
                     temperature: Any) -> str | None:
    """What is wrong with a checkpoint's class names and numbers (None: nothing)."""
    if (problem := class_names_problem(classes, num_classes)) is not None:
        return problem
    if not _is_number(mean) or not math.isfinite(mean):
        return f"mean {mean!r} is not a finite number"
    if not _is_number(std) or not math.isfinite(std) or not std > 0:
        return f"std {std!r} is not a finite positive number"
    if not _is_number(temperature) or not math.isfinite(temperature) or not temperature > 0:
        return f"temperature {temperature!r} is not a positive number"
    return None


def check_finite_outputs(outputs: torch.Tensor, source: str) -> None:
    """Raise ModelOutputNotFinite unless every one of the model's `outputs` (probabilities, log-
    probabilities, a loss) is a finite number: finite weights can still overflow (e.g. ±3e38)."""
    if not bool(torch.isfinite(outputs).all()):
        raise ModelOutputNotFinite(
            f"{source}: the model computes numbers that are not finite (NaN or inf) although its "
            "weights are finite: they are too large or broken; retrain it (a lower --lr) or pick "
            "another checkpoint")
