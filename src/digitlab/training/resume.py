"""Continuing a run folder: from its last.pt, only with the settings it was trained with.

`digitlab train --out RUN` continues RUN when it has a last.pt, so a job that torchrun (or a
person) restarts with the same command resumes instead of starting again; `--resume RUN` does
the same with the settings in RUN/config.json. Settings that change what the run learns must
match the saved ones, or the continuation is refused in one line naming them. `epochs` is the
exception: a different count trains the run further (or stops it sooner) to that many epochs in
all, where the schedule allows it. Temporary files left by a save that was killed are removed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digitlab.checkpoints.format import Checkpoint, load_checkpoint
from digitlab.errors import ConfigError, DigitlabError
from digitlab.training.config import PER_BATCH_SCHEDULERS, DataConfig, TrainConfig
from digitlab.training.runs import LAST, RUN_FILES, RunRecord, load_run

logger = logging.getLogger(__name__)

# How a run is watched, and where it runs, not what it learns: these follow the new command.
INCIDENTAL = ("progress", "device", "save_model", "tensorboard")
_SHOWN = 4  # differences named in the refusal; more are counted


@dataclass(frozen=True)
class Continuation:
    """A run folder to continue: as it is saved, the settings to continue with, its last.pt."""

    saved: RunRecord
    config: TrainConfig  # the saved settings, with the new epochs and incidental settings
    checkpoint: Checkpoint

    @property
    def start_epoch(self) -> int:
        return self.checkpoint.epoch + 1

    @property
    def extended(self) -> bool:
        """Whether the epoch count changed, so config.json must be written again."""
        return self.config.epochs != self.saved.config.epochs


def remove_stale_temp_files(run_dir: Path) -> list[Path]:
    """Delete the temporary files (`.last.pt.*.tmp`, ...) that saves killed midway left in
    `run_dir`; return them. Only one process may write a run folder, so none is in use."""
    removed = []
    for name in RUN_FILES:
        for path in run_dir.glob(f".{name}.*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    if removed:
        logger.info("removed %d temporary file(s) a killed save left in %s: %s", len(removed),
                    run_dir, ", ".join(p.name for p in removed))
    return removed


def _comparable(config: TrainConfig, data: DataConfig | None) -> dict[str, Any]:
    values = {k: v for k, v in dataclasses.asdict(config).items() if k not in (*INCIDENTAL, "epochs")}
    if data is not None:  # where the files live does not change what is learned
        values.update({f"data.{k}" if k != "dataset" else k: v
                       for k, v in data.to_dict().items() if k != "root"})
    return json.loads(json.dumps(values))  # as config.json holds them: tuples read back as lists


def setting_differences(saved: RunRecord, config: TrainConfig, data: DataConfig) -> list[str]:
    """`"lr 1.0 → 0.1"` for each setting that changes what the run learns."""
    before = _comparable(saved.config, saved.data)
    after = _comparable(config, data if saved.data is not None else None)
    keys = sorted(set(before) | set(after), key=lambda k: (k not in ("recipe", "model"), k))
    return [f"{k} {before.get(k)!r} → {after.get(k)!r}" for k in keys if before.get(k) != after.get(k)]


def find_continuation(config: TrainConfig, data: DataConfig, run_dir: Path) -> Continuation | None:
    """The continuation of `run_dir` with `config` and `data`; None when it has no last.pt.

    Raises ConfigError when its settings differ from `config`/`data` (beyond `epochs` and
    INCIDENTAL), or when the epochs asked for cannot be reached from it.
    """
    last = run_dir / LAST
    if not last.is_file():
        return None
    try:
        saved = load_run(run_dir, partial=True)
    except DigitlabError as e:
        raise ConfigError(f"cannot continue {run_dir} from its {LAST}: {e}; move the folder "
                          "away or train into another --out") from None
    differences = setting_differences(saved, config, data)
    if differences:
        more = len(differences) - _SHOWN
        named = "; ".join(differences[:_SHOWN]) + (f"; and {more} more" if more > 0 else "")
        raise ConfigError(
            f"{run_dir} was trained with other settings ({named}): continue it as it was "
            f"(`digitlab train --resume {run_dir}`, only --epochs may change) or train into "
            "another --out")
    checkpoint = load_checkpoint(last)
    _check_epochs(run_dir, saved.config, config.epochs, checkpoint.epoch)
    effective = dataclasses.replace(saved.config, epochs=config.epochs,
                                    **{k: getattr(config, k) for k in INCIDENTAL})
    return Continuation(saved=saved, config=effective, checkpoint=checkpoint)


def _check_epochs(run_dir: Path, saved: TrainConfig, epochs: int, done: int) -> None:
    """Refuse an epoch count the run cannot be continued to."""
    if epochs == saved.epochs:
        return
    if epochs < done:
        raise ConfigError(f"{run_dir} has already trained {done} epochs; --epochs {epochs} would "
                          f"undo them: ask for {done} or more")
    if saved.scheduler in PER_BATCH_SCHEDULERS:
        raise ConfigError(
            f"{run_dir} was planned for {saved.epochs} epochs with the {saved.scheduler} "
            f"schedule, whose shape depends on that count: it cannot be continued to {epochs}; "
            f"leave --epochs at {saved.epochs}, or train a new run with --epochs {epochs}")
    logger.info("%s was planned for %d epochs; training it to %d", run_dir, saved.epochs, epochs)
