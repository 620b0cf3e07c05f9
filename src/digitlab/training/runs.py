"""Run folders: config.json, metrics.json and checkpoints of one training run."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digitlab.errors import DigitlabError
from digitlab.files import write_json

CONFIG = "config.json"
METRICS = "metrics.json"
LAST = "last.pt"
BEST = "best.pt"
PLOT = "performance.png"


@dataclass
class History:
    """What a run measured: train loss every log interval, test metrics every epoch."""

    train: list[dict[str, float]] = field(default_factory=list)  # epoch, samples, loss
    epochs: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"train": self.train, "epochs": self.epochs}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        return cls(train=list(data.get("train", [])), epochs=list(data.get("epochs", [])))

    @property
    def total_seconds(self) -> float:
        return sum(e["seconds"] for e in self.epochs)

    @property
    def best_accuracy(self) -> float:
        return max((e["accuracy"] for e in self.epochs), default=0.0)

    @property
    def best_score(self) -> float:
        """What best.pt was chosen by: validation accuracy where the run held some out."""
        return max((selection_score(e) for e in self.epochs), default=0.0)


def selection_score(epoch: dict[str, Any]) -> float:
    """An epoch's validation accuracy, or its test accuracy when it had no validation split."""
    value = epoch.get("val_accuracy")
    return epoch["accuracy"] if value is None else value


@dataclass
class RunRecord:
    """A finished or running run as read back from its folder."""

    path: Path
    config: dict[str, Any]
    history: History

    @property
    def label(self) -> str:
        return f"{self.path.name} ({self.config.get('model', '?')})"


def default_run_dir(recipe: str) -> Path:
    return Path("runs") / f"{recipe}-{time.strftime('%Y%m%d-%H%M%S')}"


def write_metrics(run_dir: Path, history: History, summary: dict[str, Any]) -> None:
    write_json(run_dir / METRICS, {**summary, **history.to_dict()})


def load_run(path: str | Path) -> RunRecord:
    """Read a run folder (or the metrics.json inside one)."""
    path = Path(path)
    folder = path.parent if path.name == METRICS else path
    try:
        config = json.loads((folder / CONFIG).read_text())
        metrics = json.loads((folder / METRICS).read_text())
    except FileNotFoundError as e:
        raise DigitlabError(
            f"{folder} is not a run folder (no {Path(e.filename).name}); "
            "pass a folder written by `digitlab train`"
        ) from None
    except json.JSONDecodeError as e:
        raise DigitlabError(f"{folder}: damaged run file ({e})") from None
    return RunRecord(path=folder, config=config, history=History.from_dict(metrics))
