"""Typed settings. Library functions take these, never an argparse Namespace."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from digitlab.devices import DEVICES
from digitlab.errors import ConfigError

LOSSES = ("nll", "mse")  # nll on log-probabilities is cross-entropy; mse: softmax vs one-hot
LOSS_ALIASES = {"cross-entropy": "nll", "cross_entropy": "nll", "ce": "nll"}
OPTIMIZERS = ("adadelta", "sgd", "adam", "adamw")
SCHEDULERS = ("step", "onecycle", "none")
PER_BATCH_SCHEDULERS = ("onecycle",)  # stepped after every batch; the others once per epoch
AMP_MODES = ("off", "auto", "bf16", "fp16")  # mixed precision (training.precision); auto: bf16 where fast
SELECT_BY = ("test", "val", "real")  # what picks best.pt (training.runs.EpochRecord.selection_score)


@dataclass(frozen=True)
class DataConfig:
    """Where the data set lives and which one it is; what judges the run and picks best.pt."""

    root: Path
    dataset: str = "mnist"
    train_limit: int | None = None  # use only the first N training images (quick experiments)
    test_limit: int | None = None
    val_split: int = 0  # hold out the last N training images to pick best.pt (data.splits); 0: none
    # folders of real labelled digits (reading.labelled) scored every epoch, never trained on;
    # absolute paths, each folder's name its key in metrics.json (training.real_folders)
    val_real: tuple[str, ...] = ()
    select_by: str | None = None  # test, val or real; None: val with a --val-split, else test

    def __post_init__(self) -> None:
        given = (self.val_real,) if isinstance(self.val_real, str | Path) else self.val_real
        folders = tuple(str(Path(f).expanduser().absolute()) for f in given)
        object.__setattr__(self, "val_real", folders)  # config.json gives a list; a str is one
        names = [Path(f).name for f in folders]
        twice = next((n for n in names if names.count(n) > 1), "")
        checks = [
            (self.val_split >= 0, f"--val-split must be 0 or more (got {self.val_split})"),
            (self.select_by in (None, *SELECT_BY),
             f"--select-by must be one of {', '.join(SELECT_BY)} (got {self.select_by!r})"),
            (self.select_by != "val" or self.val_split > 0, "--select-by val needs --val-split"),
            (self.select_by != "real" or bool(folders),
             "--select-by real needs at least one --val-real DIR"),
            (not twice, f"--val-real folders are told apart by name; two are called {twice!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def to_dict(self) -> dict[str, Any]:
        """The data settings as config.json holds them; val_real and select_by only when set,
        so a run that uses neither writes what earlier versions wrote."""
        values = {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self).items()}
        for name, unset in (("val_real", ()), ("select_by", None)):
            if values[name] == unset:
                del values[name]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> DataConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        kept = {k: v for k, v in values.items() if k in names}
        return cls(**{**kept, "root": Path(kept["root"])})


_ADDED_SINCE_0_1 = {"amp": "off", "tensorboard": False, "junk": 0}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; saved as the run's config.json."""

    recipe: str
    model: str
    model_args: dict[str, Any] = field(default_factory=dict)
    optimizer: str = "adadelta"
    lr: float = 1.0
    weight_decay: float = 0.0
    scheduler: str = "step"  # step (StepLR per epoch), onecycle (per batch) or none
    gamma: float = 0.7
    warmup: float = 0.25  # onecycle: share of the steps spent raising the learning rate
    label_smoothing: float = 0.0
    loss: str = "nll"  # training loss; evaluation always reports NLL so runs compare
    augment: dict[str, Any] | None = None  # AugmentConfig fields; None = no augmentation
    channels_last: bool = False  # NHWC memory format: faster convolutions on CPU
    amp: str = "off"  # mixed precision: off, auto, bf16 or fp16 (training.precision)
    printed: int = 0  # typeset digits added to the training split (digitlab.writing.synthetic)
    redrawn: int = 0  # training digits re-drawn with an even pen and added (digitlab.writing.synthetic)
    styled: int = 0  # training digits in styles and pictures MNIST lacks (digitlab.writing.synthetic)
    junk: int = 0  # pictures with no digit, learned as "not a digit" (digitlab.writing.junk)
    batch_size: int = 64
    test_batch_size: int = 1000
    epochs: int = 14
    seed: int = 1
    log_interval: int = 10
    dry_run: bool = False
    device: str = "auto"
    save_model: bool = False
    progress: bool = True
    tensorboard: bool = False  # also write TensorBoard event files into RUN/tensorboard/

    def __post_init__(self) -> None:
        object.__setattr__(self, "loss", LOSS_ALIASES.get(self.loss, self.loss))
        checks = [
            (self.epochs >= 1, f"--epochs must be at least 1 (got {self.epochs})"),
            (self.batch_size >= 1, f"--batch-size must be at least 1 (got {self.batch_size})"),
            (
                self.test_batch_size >= 1,
                f"--test-batch-size must be at least 1 (got {self.test_batch_size})",
            ),
            (self.lr > 0, f"--lr must be positive (got {self.lr})"),
            (self.gamma > 0, f"--gamma must be positive (got {self.gamma})"),
            (0 < self.warmup < 1, f"warmup must be between 0 and 1 (got {self.warmup})"),
            (self.log_interval >= 1, f"--log-interval must be at least 1 (got {self.log_interval})"),
            (self.device in DEVICES, f"--device must be one of {', '.join(DEVICES)}"),
            (self.loss in LOSSES, f"--loss must be nll (cross-entropy) or mse (got {self.loss!r})"),
            (self.optimizer in OPTIMIZERS,
             f"unknown optimizer {self.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}"),
            (self.scheduler in SCHEDULERS,
             f"unknown scheduler {self.scheduler!r}; choose one of: {', '.join(SCHEDULERS)}"),
            (min(self.printed, self.redrawn, self.styled, self.junk) >= 0,
             "printed, redrawn, styled and junk are counts: 0 or more"),
            (self.weight_decay >= 0, f"--weight-decay must be at least 0 (got {self.weight_decay})"),
            (self.amp in AMP_MODES, f"--amp must be off, auto, bf16 or fp16 (got {self.amp!r})"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def to_dict(self) -> dict[str, Any]:
        """The settings as config.json holds them; those added since 0.1 only when they are not
        at their default, so a run that uses none of them writes the file 0.1 wrote."""
        values = dataclasses.asdict(self)
        for name, default in _ADDED_SINCE_0_1.items():
            if values[name] == default:
                del values[name]
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})
