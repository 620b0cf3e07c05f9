"""Calibration: does a confidence of 0.9 mean right nine times in ten?

Reliability bins and expected calibration error (ECE) in the standard form (Naeini et al. 2015,
Guo et al. 2017): the top-class confidence is put into equal-width bins (lo, hi] over [0, 1] and
ECE = sum over bins of (bin size / N) * |accuracy in bin - mean confidence in bin|.
Temperature scaling (Guo et al.) divides the logits by one scalar T fitted for the lowest NLL;
it changes confidences, never the predicted class.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from scipy.optimize import minimize_scalar

ECE_BINS = 15
# The search range for 1/T; MNIST models land well inside it (T between 0.05 and 20).
_INVERSE_T_RANGE = (0.05, 20.0)


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


def scale_logits(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Log-probabilities after temperature scaling (log-probabilities work as logits too)."""
    return F.log_softmax(logits.double() / temperature, dim=1)


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature T that minimises the NLL of softmax(logits / T) on (`logits`, `labels`).

    Fit it on a validation split, never on the data it will be reported on. The NLL is convex
    in 1/T, so a bounded scalar search finds the one minimum.
    """
    logits, labels = logits.double().cpu(), labels.cpu()

    def nll(inverse_t: float) -> float:
        return float(F.cross_entropy(logits * inverse_t, labels))

    result = minimize_scalar(nll, bounds=_INVERSE_T_RANGE, method="bounded",
                             options={"xatol": 1e-6})
    return 1.0 / float(result.x)
