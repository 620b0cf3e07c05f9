"""Evaluate a checkpoint on a test split: loss, accuracy, per-class numbers, confusion."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from digitlab.checkpoints.format import Checkpoint, load_model
from digitlab.checkpoints.integrity import check_finite_outputs
from digitlab.data import DatasetSpec, get_dataset, load_split
from digitlab.data.loader import TensorLoader
from digitlab.devices import resolve_device
from digitlab.errors import CheckpointError
from digitlab.files import output_dir, write_json
from digitlab.reports.metrics import most_confused, per_class_report
from digitlab.reports.plots import save_figure
from digitlab.training.config import DataConfig
from digitlab.training.engine import EvalStats, evaluate
from digitlab.training.figures import plot_confusion

logger = logging.getLogger(__name__)


@dataclass
class EvaluationReport:
    checkpoint: str
    stats: EvalStats
    classes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint,
            "test_loss": self.stats.loss,
            "accuracy": self.stats.accuracy,
            "correct": self.stats.correct,
            "total": self.stats.total,
            "per_class": per_class_report(self.stats.confusion, self.classes),
            "most_confused": most_confused(self.stats.confusion, self.classes),
            "confusion_matrix": self.stats.confusion.tolist(),
        }


def load_evaluated_model(
    path: str | os.PathLike[str], device: torch.device
) -> tuple[nn.Module, Checkpoint, DatasetSpec]:
    """Load `path`'s model and the spec of the data set it was trained on (same classes)."""
    model, checkpoint = load_model(path, device)
    spec = get_dataset(checkpoint.dataset)
    if len(checkpoint.classes) != len(spec.classes):
        raise CheckpointError(f"{path} has {len(checkpoint.classes)} classes, {spec.name} has "
                              f"{len(spec.classes)}")
    return model, checkpoint, spec


def evaluate_checkpoint(
    path: str | os.PathLike[str], data: DataConfig, device: str = "auto", batch_size: int = 1000
) -> EvaluationReport:
    """Run `path`'s model over the test split of the data set it was trained on."""
    torch_device = resolve_device(device)
    model, checkpoint, spec = load_evaluated_model(path, torch_device)
    images, labels = load_split(data.root, train=False, spec=spec, limit=data.test_limit)
    batches = TensorLoader(
        images, labels, batch_size, mean=checkpoint.mean, std=checkpoint.std, device=torch_device
    )
    stats = evaluate(model, batches, len(spec.classes))
    check_finite_outputs(torch.tensor(stats.loss), str(path))
    return EvaluationReport(checkpoint=str(path), stats=stats, classes=list(checkpoint.classes))


def write_evaluation(report: EvaluationReport, out_dir: Path) -> tuple[Path, Path]:
    """Write report.json and confusion.png into `out_dir`."""
    json_path, png_path = out_dir / "report.json", out_dir / "confusion.png"
    title = f"{Path(report.checkpoint).name}: accuracy {100 * report.stats.accuracy:.2f}%"
    figure = plot_confusion(report.stats.confusion.numpy(), report.classes, title)
    with output_dir(out_dir):
        write_json(json_path, report.to_dict())
        save_figure(figure, png_path)
    return json_path, png_path
