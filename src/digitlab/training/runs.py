"""Run folders as one type: a `RunRecord` the trainer writes and every reader loads.

A run folder holds config.json (the settings, where and with what it ran), metrics.json (a
summary and the history) and the checkpoints last.pt and best.pt. `RunRecord.to_dict` and
`from_dict` are the only code that knows the two files' keys.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from digitlab.checkpoints.format import Checkpoint
from digitlab.errors import CheckpointError, DigitlabError
from digitlab.files import write_json
from digitlab.training.config import DataConfig, TrainConfig

CONFIG = "config.json"
METRICS = "metrics.json"
LAST = "last.pt"
BEST = "best.pt"
PLOT = "performance.png"
TUTORIAL_WEIGHTS = "mnist_cnn.pt"  # --save-model: the tutorial's bare state_dict
TENSORBOARD = "tensorboard"  # --tensorboard: the event files' folder
RUN_FILES = (CONFIG, METRICS, LAST, BEST, PLOT, TUTORIAL_WEIGHTS)

T = TypeVar("T")


def _from_values(cls: type[T], values: Mapping[str, Any]) -> T:
    """`cls` from the keys of `values` that name its fields (a damaged entry raises ValueError)."""
    if not isinstance(values, Mapping):
        raise ValueError(f"expected an object, got {values!r}")
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    try:
        return cls(**{k: v for k, v in values.items() if k in names})
    except TypeError as e:
        raise ValueError(str(e)) from None


@dataclass(frozen=True)
class TrainPoint:
    """The training loss every log interval."""

    epoch: int
    samples: int  # training images the model has seen, over every process
    loss: float


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch measured."""

    epoch: int
    samples: int  # training images seen by the end of the epoch, over every process
    train_loss: float
    test_loss: float
    accuracy: float  # on the test split
    lr: float  # at the start of the epoch
    seconds: float  # training plus testing
    images_per_s: float  # training throughput, over every process
    val_loss: float | None = None  # on the validation split, where the run held one out
    val_accuracy: float | None = None
    real: dict[str, float] | None = None  # accuracy on each --val-real folder, by its name
    real_mean: float | None = None  # their mean

    def selection(self, select_by: str | None = None) -> str:
        """The score that picks best.pt (DataConfig.select_by): `test` accuracy, `val`idation
        accuracy, or the mean accuracy over the `real` folders; None: `val` where the run held
        some out, else `test`."""
        return select_by or ("test" if self.val_accuracy is None else "val")

    def selection_score(self, select_by: str | None = None) -> float:
        """What best.pt is chosen by: the score `selection(select_by)` names."""
        select_by = self.selection(select_by)
        score = {"test": self.accuracy, "val": self.val_accuracy, "real": self.real_mean}[select_by]
        if score is None:
            raise ValueError(f"epoch {self.epoch} has no {select_by} accuracy to be chosen by")
        return score

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> EpochRecord:
        return _from_values(cls, values)


@dataclass
class History:
    """What a run measured: train loss every log interval, test metrics every epoch."""

    train: list[TrainPoint] = field(default_factory=list)
    epochs: list[EpochRecord] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"train": [dataclasses.asdict(p) for p in self.train],
                "epochs": [e.to_dict() for e in self.epochs]}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> History:
        return cls(train=[_from_values(TrainPoint, p) for p in values.get("train", [])],
                   epochs=[EpochRecord.from_dict(e) for e in values.get("epochs", [])])

    @property
    def samples(self) -> int:
        """Training images seen by the end of the last epoch."""
        return self.epochs[-1].samples if self.epochs else 0

    @property
    def total_seconds(self) -> float:
        return sum(e.seconds for e in self.epochs)

    @property
    def best_accuracy(self) -> float:
        return max((e.accuracy for e in self.epochs), default=0.0)

    def best_score(self, select_by: str | None = None) -> float:
        """The best epoch's score by `select_by` (EpochRecord.selection_score): best.pt's."""
        return max((e.selection_score(select_by) for e in self.epochs), default=0.0)


def _in_config(key: str, **kwargs: Any) -> Any:
    """A RunRecord field that config.json holds under `key`."""
    return field(metadata={CONFIG: key}, **kwargs)


@dataclass(frozen=True)
class RunRecord:
    """One training run: its settings, what it measured, where and with what it ran."""

    path: Path  # the run folder
    config: TrainConfig
    data: DataConfig | None = None  # None: known from a checkpoint, which keeps no data settings
    history: History = field(default_factory=History)
    device: str | None = _in_config("device_resolved", default=None)  # what "auto" became
    parameters: int | None = _in_config("parameters", default=None)
    versions: dict[str, str] = _in_config("versions", default_factory=dict)
    machine: dict[str, str] = _in_config("machine", default_factory=dict)
    started: str | None = _in_config("started", default=None)
    rank_checksums: tuple[float, ...] = ()  # each torchrun process's weights at the end

    @property
    def label(self) -> str:
        return f"{self.path.name} ({self.config.model})"

    @property
    def accuracy(self) -> float | None:
        """Test accuracy after the last epoch (None before the first)."""
        return self.history.epochs[-1].accuracy if self.history.epochs else None

    @property
    def best_score(self) -> float:
        """What best.pt was chosen by (the run's --select-by), at its best epoch."""
        return self.history.best_score(self.data.select_by if self.data is not None else None)

    @property
    def ranks_agree(self) -> bool:
        """Every process ended with the same weights (trivially, with one process)."""
        return len(set(self.rank_checksums)) <= 1

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The run folder's files, {CONFIG: {...}, METRICS: {...}}, keyed as on disk."""
        settings = {
            **self.config.to_dict(),
            **({"data": self.data.to_dict()} if self.data is not None else {}),
            **{f.metadata[CONFIG]: getattr(self, f.name)
               for f in dataclasses.fields(self) if CONFIG in f.metadata},
        }
        last = self.history.epochs[-1] if self.history.epochs else None
        summary: dict[str, Any] = {
            "model": self.config.model, "recipe": self.config.recipe, "device": self.device,
            "epochs_done": len(self.history.epochs),
            "accuracy": last.accuracy if last else None,
            "test_loss": last.test_loss if last else None,
            "total_seconds": self.history.total_seconds,
        }
        if self.rank_checksums:  # written at the end of a torchrun job
            summary.update(world_size=len(self.rank_checksums),
                           rank_checksums=list(self.rank_checksums), ranks_agree=self.ranks_agree)
        return {CONFIG: settings, METRICS: {**summary, **self.history.to_dict()}}

    @classmethod
    def from_dict(cls, files: Mapping[str, Mapping[str, Any]], path: Path) -> RunRecord:
        """The record of the folder `path` from its files' contents; metrics.json may be absent
        (no epoch finished yet). Raises ValueError (or ConfigError) for a damaged file."""
        settings, metrics = files[CONFIG], files.get(METRICS, {})
        data = settings.get("data")
        return cls(
            path=path,
            config=TrainConfig.from_dict(settings),
            data=DataConfig.from_dict(data) if data is not None else None,
            history=History.from_dict(metrics),
            rank_checksums=tuple(metrics.get("rank_checksums", ())),
            **{f.name: settings[f.metadata[CONFIG]] for f in dataclasses.fields(cls)
               if CONFIG in f.metadata and f.metadata[CONFIG] in settings},
        )


def default_run_dir(recipe: str) -> Path:
    return Path("runs") / f"{recipe}-{time.strftime('%Y%m%d-%H%M%S')}"


def save_run(record: RunRecord, *names: str) -> None:
    """Write the files `names` of `record` (default: config.json and metrics.json) into its
    folder, each atomically."""
    files = record.to_dict()
    for name in names or tuple(files):
        write_json(record.path / name, files[name])


def _read(path: Path) -> dict[str, Any]:
    values = json.loads(path.read_text())
    if not isinstance(values, dict):
        raise ValueError(f"{path.name} holds {type(values).__name__}, not an object")
    return values


def load_run(path: str | Path, *, partial: bool = False) -> RunRecord:
    """Read a run folder (or the metrics.json inside one).

    `partial`: the run may not have finished an epoch, so a missing or unreadable metrics.json
    reads as no history (the history a resume needs is in last.pt).
    """
    path = Path(path)
    folder = path.parent if path.name == METRICS else path
    files = {}
    try:
        files[CONFIG] = _read(folder / CONFIG)
        files[METRICS] = _read(folder / METRICS)
    except FileNotFoundError as e:
        if not (partial and CONFIG in files):
            raise DigitlabError(
                f"{folder} is not a run folder (no {Path(e.filename).name}); "
                "pass a folder written by `digitlab train`"
            ) from None
    except (OSError, UnicodeDecodeError, ValueError) as e:  # JSONDecodeError is a ValueError
        if not (partial and CONFIG in files):
            raise DigitlabError(f"{folder}: damaged run file ({e})") from None
    try:
        return RunRecord.from_dict(files, folder)
    except (KeyError, TypeError, ValueError, DigitlabError) as e:
        raise DigitlabError(f"{folder}: damaged run file ({e})") from None


def checkpoint_history(checkpoint: Checkpoint) -> History:
    """The training history the trainer keeps in a checkpoint's `metrics` (empty in a packed model)."""
    try:
        return History.from_dict(checkpoint.metrics.get("history") or {})
    except ValueError as e:
        raise CheckpointError(f"damaged training history in the checkpoint ({e})") from None


def checkpoint_run_record(checkpoint: Checkpoint, folder: Path) -> RunRecord | None:
    """The run as a checkpoint remembers it (settings and history, no data settings), or None
    when it keeps no history."""
    history = checkpoint_history(checkpoint)
    if not history.epochs:
        return None
    try:
        config = TrainConfig.from_dict(checkpoint.config)
    except (TypeError, DigitlabError) as e:
        raise CheckpointError(f"damaged settings in the checkpoint ({e})") from None
    return RunRecord(path=folder, config=config, history=history)
