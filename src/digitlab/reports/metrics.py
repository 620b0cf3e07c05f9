"""Numbers derived from a confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def per_class_report(confusion: torch.Tensor, classes: Sequence[str]) -> list[dict[str, Any]]:
    """Precision, recall (= per-class accuracy), F1 and support for each class."""
    confusion = confusion.double()
    true_positive = confusion.diagonal()
    support = confusion.sum(dim=1)
    predicted = confusion.sum(dim=0)
    recall = true_positive / support.clamp(min=1)
    precision = true_positive / predicted.clamp(min=1)
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    return [
        {
            "class": name,
            "support": int(support[i]),
            "accuracy": round(float(recall[i]), 6),
            "precision": round(float(precision[i]), 6),
            "recall": round(float(recall[i]), 6),
            "f1": round(float(f1[i]), 6),
        }
        for i, name in enumerate(classes)
    ]


def most_confused(
    confusion: torch.Tensor, classes: Sequence[str], top: int = 5
) -> list[dict[str, Any]]:
    """The largest off-diagonal cells: which true class was read as which, how often."""
    off = confusion.clone()
    off.fill_diagonal_(0)
    counts, flat = off.flatten().topk(min(top, off.numel()))
    n = len(classes)
    return [
        {"true": classes[int(i) // n], "predicted": classes[int(i) % n], "count": int(c)}
        for c, i in zip(counts, flat, strict=True)
        if c > 0
    ]
