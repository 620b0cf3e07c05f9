"""A checkpoint's temperature, fitted on its validation split: `digitlab pack --calibrate`.

The formula (fit and apply) is digitlab.models.temperature; this gathers the data: the model's
log-probabilities on the validation split the report uses, and whether the model saw it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from digitlab.devices import resolve_device
from digitlab.models.temperature import apply_temperature, fit_temperature
from digitlab.reports.evaluation import load_evaluated_model
from digitlab.reports.report import (
    VALIDATION_SIZE,
    evaluate_outputs,
    find_run,
    validation_held_out,
    validation_split,
)
from digitlab.training.config import DataConfig


def fit_checkpoint_temperature(
    path: str | os.PathLike[str], data: DataConfig, device: str = "auto",
    validation_size: int = VALIDATION_SIZE, batch_size: int = 1000,
) -> dict[str, Any]:
    """Fit `path`'s temperature on the validation split, for `digitlab pack --calibrate`.

    Returns {"temperature", "validation", "held_out", "nll_before", "nll_after"}.
    """
    path, torch_device = Path(path), resolve_device(device)
    model, checkpoint, spec = load_evaluated_model(path, torch_device)
    val_x, val_y, start, split_size = validation_split(data, spec, validation_size)
    _, logp = evaluate_outputs(model, checkpoint, val_x, val_y, torch_device, batch_size)
    temperature = fit_temperature(logp, val_y)
    nll = torch.nn.functional.nll_loss
    return {
        "temperature": round(temperature, 6),
        "validation": f"{spec.name} training images {start}-{start + len(val_y) - 1}",
        "held_out": validation_held_out(find_run(path, checkpoint), start, split_size),
        "nll_before": round(float(nll(logp, val_y)), 6),
        "nll_after": round(float(nll(apply_temperature(logp.double(), temperature, log=True), val_y)), 6),
    }
