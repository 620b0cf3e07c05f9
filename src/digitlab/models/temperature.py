"""Temperature scaling (Guo et al. 2017): one scalar T, fitted once, applied everywhere.

softmax(logits / T) changes confidences, never which class wins. `fit_temperature` finds T on
a validation split (`digitlab pack --calibrate`); `apply_temperature` is the one place it is
applied: by the Predictor, inside exported graphs (it traces) and by the report.
Our models return log-probabilities, which work as logits: softmax ignores a constant per row.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# The search range for 1/T; MNIST models land well inside it (T between 0.05 and 20).
_INVERSE_T_RANGE = (0.05, 20.0)


def apply_temperature(logits: torch.Tensor, temperature: float, *, log: bool = False) -> torch.Tensor:
    """softmax(logits / T) over the last dimension, or its logarithm with `log=True`."""
    scaled = logits / temperature
    return F.log_softmax(scaled, dim=-1) if log else F.softmax(scaled, dim=-1)


def temper_probabilities(probabilities: torch.Tensor, temperature: float) -> torch.Tensor:
    """Probabilities as if their logits had been divided by `temperature` (log p serves as logits)."""
    if temperature == 1.0:
        return probabilities
    return apply_temperature(probabilities.clamp_min(1e-30).log(), temperature)


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature T that minimises the NLL of softmax(logits / T) on (`logits`, `labels`).

    Fit it on a validation split, never on the data it will be reported on. The NLL is convex
    in 1/T, so a bounded scalar search finds the one minimum.
    """
    from scipy.optimize import minimize_scalar

    logits, labels = logits.double().cpu(), labels.cpu()

    def nll(inverse_t: float) -> float:
        return float(F.nll_loss(apply_temperature(logits, 1.0 / inverse_t, log=True), labels))

    result = minimize_scalar(nll, bounds=_INVERSE_T_RANGE, method="bounded",
                             options={"xatol": 1e-6})
    return 1.0 / float(result.x)
