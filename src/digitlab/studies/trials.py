"""What a study's trial carries: the run it stands for, and that run's record once trained.

A trial's user attributes hold everything a worker needs to train it, whatever spec the worker
was started with and on whatever machine: the run's name, its settings (TrainConfig without
where it executes, the data settings without the data folder) and a key over both. Once trained,
the trial keeps the run's record (config.json and metrics.json as RunRecord.to_dict writes them),
so summaries, rankings and figures read the storage, not the run folders. This module is the only
code that knows those attribute names.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digitlab.errors import DigitlabError
from digitlab.training.config import DataConfig, TrainConfig
from digitlab.training.runs import METRICS, RunRecord

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

NOT_COMPARED = ("device", "progress")  # where a run executes does not change what it learns
TRAIN_POINTS_KEPT = 300  # of a run's loss curve, in the storage: enough for its figure

RUN, KEY, CONFIG, DATA, SETTINGS = "run", "key", "config", "data", "settings"
RECORD, STATUS, ERROR, WORKER = "record", "status", "error", "worker"
DUPLICATE_OF = "duplicate_of"


def comparable(config: TrainConfig) -> dict[str, Any]:
    """`config` as config.json holds it (tuples read back as lists), less where it executes."""
    values = {k: v for k, v in config.to_dict().items() if k not in NOT_COMPARED}
    return dict(json.loads(json.dumps(values)))


def data_values(data: DataConfig) -> dict[str, Any]:
    """The data settings that change what a run learns: not where the files live."""
    return {k: v for k, v in data.to_dict().items() if k != "root"}


def run_key(config: TrainConfig, data: DataConfig) -> str:
    """Equal for two runs that learn the same thing, wherever and with whatever they run."""
    text = json.dumps([comparable(config), data_values(data)], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_attrs(name: str, settings: Iterable[tuple[str, str]], config: TrainConfig,
              data: DataConfig) -> dict[str, Any]:
    """The user attributes of a trial that stands for the run `name`."""
    return {RUN: name, KEY: run_key(config, data), CONFIG: comparable(config),
            DATA: data_values(data), SETTINGS: [list(pair) for pair in settings]}


def run_of(attrs: Mapping[str, Any], root: Path, device: str) -> tuple[TrainConfig, DataConfig]:
    """The settings of the run a trial stands for, trained here: on `device`, data in `root`."""
    config = TrainConfig.from_dict({**attrs[CONFIG], "device": device, "progress": False})
    return config, DataConfig.from_dict({**attrs[DATA], "root": root})


def worker_id() -> str:
    """This process, as a trial records who trained it: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def record_attrs(record: RunRecord) -> dict[str, Any]:
    """The user attributes that keep a run's record in the storage (loss curve thinned)."""
    files = record.to_dict()
    metrics = dict(files[METRICS])
    train = metrics.get("train", [])
    if len(train) > TRAIN_POINTS_KEPT:
        stride = -(-len(train) // TRAIN_POINTS_KEPT)
        metrics["train"] = train[::stride] + ([train[-1]] if (len(train) - 1) % stride else [])
    return {RECORD: {**files, METRICS: metrics, "path": str(record.path)}}


def record_of(trial: FrozenTrial) -> RunRecord | None:
    """The record a trial keeps (None before its run finished an epoch, or if damaged)."""
    saved = trial.user_attrs.get(RECORD)
    if not isinstance(saved, dict):
        return None
    try:
        return RunRecord.from_dict(saved, Path(saved.get("path", trial.user_attrs.get(RUN, "."))))
    except (KeyError, TypeError, ValueError, DigitlabError):
        return None


def describe_trial(trial: FrozenTrial) -> dict[str, Any]:
    """One row of a study's trial table: number, state, run, params, value, who and why."""
    attrs = trial.user_attrs
    return {
        "number": trial.number, "state": trial.state.name, "run": attrs.get(RUN, ""),
        "params": dict(trial.params), "value": trial.value,
        "status": attrs.get(STATUS, ""), "worker": attrs.get(WORKER, ""),
        "note": attrs.get(ERROR) or (f"duplicate of trial {attrs[DUPLICATE_OF]}"
                                     if DUPLICATE_OF in attrs else ""),
    }
