"""Calibration: does a confidence of 0.9 mean right nine times in ten?

Reliability bins and expected calibration error (ECE) in the standard form (Naeini et al. 2015,
Guo et al. 2017): the top-class confidence is put into equal-width bins (lo, hi] over [0, 1] and
ECE = sum over bins of (bin size / N) * |accuracy in bin - mean confidence in bin|.
Temperature scaling (Guo et al.), fitted and applied, is digitlab.models.temperature.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

ECE_BINS = 15


@dataclass(frozen=True)
class Reliability:
    """Per-bin sample count, mean confidence and accuracy (0 for an empty bin), and the ECE."""

    edges: list[float]
    counts: list[int]
    confidence: list[float]
    accuracy: list[float]
    ece: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reliability(probabilities: torch.Tensor, labels: torch.Tensor, bins: int = ECE_BINS) -> Reliability:
    """Bin the top-class confidence of N×C `probabilities` against the true `labels`."""
    confidence, predicted = probabilities.double().max(dim=1)
    correct = (predicted == labels.to(predicted.device)).double()
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    # bucketize(right=False) puts x in bin i when edges[i] < x <= edges[i + 1]: bins are (lo, hi]
    index = torch.bucketize(confidence.cpu(), edges[1:-1]).to(confidence.device)
    counts = torch.bincount(index, minlength=bins).double()
    confidence_sum = torch.zeros(bins, dtype=torch.float64).index_add_(0, index, confidence)
    correct_sum = torch.zeros(bins, dtype=torch.float64).index_add_(0, index, correct)
    mean_confidence = confidence_sum / counts.clamp(min=1)
    accuracy = correct_sum / counts.clamp(min=1)
    total = max(len(labels), 1)
    ece = float((counts / total * (accuracy - mean_confidence).abs()).sum())
    return Reliability(
        edges=edges.tolist(), counts=[int(c) for c in counts], confidence=mean_confidence.tolist(),
        accuracy=accuracy.tolist(), ece=ece,
    )


def expected_calibration_error(
    probabilities: torch.Tensor, labels: torch.Tensor, bins: int = ECE_BINS
) -> float:
    """ECE of N×C `probabilities` against `labels` with `bins` equal-width bins."""
    return reliability(probabilities, labels, bins).ece

