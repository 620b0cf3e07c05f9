"""The checks a checkpoint's numbers pass: weights digest, finite tensors, shapes, metadata."""

import math

import pytest
import torch

from digitlab.checkpoints.integrity import (
    metadata_problem,
    non_finite_tensors,
    shape_problem,
    weights_digest,
)
from digitlab.models import create_model


def state():
    torch.manual_seed(0)
    return {k: v.clone() for k, v in create_model("bncnn").state_dict().items()}


def test_the_digest_is_the_same_for_equal_weights_and_changes_with_any_bit():
    a, b = state(), state()
    assert weights_digest(a) == weights_digest(b) and len(weights_digest(a)) == 64
    flipped = state()
    flipped["classifier.weight"].view(-1)[7].view(torch.int32).bitwise_xor_(1 << 3)  # one bit
    assert weights_digest(flipped) != weights_digest(a)


@pytest.mark.parametrize("change", [
    lambda s: s.update({"renamed": s.pop("classifier.bias")}),  # a name
    lambda s: s.update({"classifier.bias": s["classifier.bias"].double()}),  # a dtype
    lambda s: s.update({"classifier.bias": s["classifier.bias"].reshape(1, -1)}),  # a shape
])
def test_the_digest_covers_names_dtypes_and_shapes(change):
    original, changed = state(), state()
    change(changed)
    assert weights_digest(changed) != weights_digest(original)


def test_non_finite_tensors_are_named_and_integer_buffers_are_ignored():
    weights = state()
    assert non_finite_tensors(weights) == []
    weights["classifier.bias"][3] = math.nan
    weights["features.0.0.weight"].view(-1)[0] = -math.inf
    assert sorted(non_finite_tensors(weights)) == ["classifier.bias", "features.0.0.weight"]
    assert weights["features.0.1.num_batches_tracked"].dtype == torch.long  # skipped, not failed


def test_shape_problems_name_the_tensor():
    expected = create_model("mlp").state_dict()
    assert shape_problem(expected, expected) is None
    wider = create_model("mlp", hidden=[64]).state_dict()
    assert shape_problem(wider, expected) == "'fc1.weight' has shape (64, 784), the model needs (128, 784)"
    assert "missing 'fc2.bias'" in shape_problem({k: v for k, v in expected.items() if k != "fc2.bias"},
                                                 expected)


GOOD = dict(classes=[str(d) for d in range(10)], num_classes=10, mean=0.1307, std=0.3081,
            temperature=1.0)


@pytest.mark.parametrize("bad, problem", [
    ({"classes": ["a"]}, "classes must be 10 distinct names"),
    ({"classes": ["0"] * 10}, "classes must be 10 distinct names"),
    ({"classes": list(range(10))}, "classes must be 10 distinct names"),
    ({"classes": "0123456789"}, "classes must be 10 distinct names"),
    ({"mean": "x"}, "mean 'x' is not a finite number"),
    ({"mean": math.nan}, "mean nan is not a finite number"),
    ({"mean": True}, "mean True is not a finite number"),
    ({"std": 0}, "std 0 is not a finite positive number"),
    ({"std": -0.3}, "std -0.3 is not a finite positive number"),
    ({"std": math.inf}, "std inf is not a finite positive number"),
    ({"temperature": math.nan}, "temperature nan is not a positive number"),
    ({"temperature": 0.0}, "temperature 0.0 is not a positive number"),
])
def test_metadata_problems(bad, problem):
    assert metadata_problem(**GOOD) is None
    assert metadata_problem(**{**GOOD, **bad}).startswith(problem)
