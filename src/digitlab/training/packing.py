"""Packing a trained run for release: a slim checkpoint (weights, no optimiser state or history)
and its training record beside it (`<name>.json`: recipe, seed, accuracy, date, versions).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import torch

from digitlab.checkpoints.format import Checkpoint, load_checkpoint, save_checkpoint
from digitlab.files import write_json
from digitlab.training.runs import History, checkpoint_history

logger = logging.getLogger(__name__)


def pack_checkpoint(
    source: str | os.PathLike[str], target: str | os.PathLike[str],
    calibration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write a slim copy of `source` for inference (no optimiser state or history) plus a
    training record `<target>.json` (recipe, seed, accuracy, date, versions); return the record.

    `calibration` ({"temperature": T, ...}, see digitlab.reports.report.fit_checkpoint_temperature) is
    stored in the copy and the record. Packing a packed model keeps its training record.
    """
    checkpoint = load_checkpoint(source)
    history = checkpoint_history(checkpoint)
    slim = dataclasses.replace(
        checkpoint,
        state_dict={k: v.clone() for k, v in checkpoint.state_dict.items()},
        optimizer_state=None, scheduler_state=None, rng_state=None,
        metrics={k: v for k, v in checkpoint.metrics.items() if k != "history"},
        temperature=float(calibration["temperature"]) if calibration else checkpoint.temperature,
    )
    save_checkpoint(target, slim)
    record = read_training_record(source) if not history.epochs else None
    if record is None:
        record = _training_record(checkpoint, history)
    record.update(file=Path(target).name, torch=torch.__version__, packed=time.strftime("%Y-%m-%d"),
                  bytes=Path(target).stat().st_size)
    if calibration:
        record["calibration"] = calibration
    write_json(Path(target).with_suffix(".json"), record)
    return record


def read_training_record(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """`<path>.json`, the training record `pack_checkpoint` writes beside a packed model."""
    path = Path(path)
    record_path = path.with_suffix(".json")
    if not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        logger.warning("ignoring %s: %s", record_path, e)
        return None
    return record if isinstance(record, dict) and record.get("file") == path.name else None


def _training_record(checkpoint: Checkpoint, history: History) -> dict[str, Any]:
    return {
        "model": checkpoint.model_name,
        "model_args": checkpoint.model_args,
        "recipe": checkpoint.config.get("recipe"),
        "seed": checkpoint.config.get("seed"),
        "epochs": checkpoint.epoch,
        "test_accuracy": checkpoint.metrics.get("accuracy"),
        "train_seconds": round(history.total_seconds, 1),
        "trained_with": checkpoint.digitlab_version,
    }
