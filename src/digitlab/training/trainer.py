"""A whole training run: data, model, epochs, run folder, checkpoints; resumable. The caller
plots it (digitlab.reports.plots.write_run_plot): training draws nothing.

A run folder that has a last.pt is continued, not overwritten (training.resume). A loss or a
weight that stops being finite ends the run with TrainingDiverged, and is never saved.
"""

from __future__ import annotations

import dataclasses
import logging
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from digitlab import __version__
from digitlab.checkpoints.format import Checkpoint, save_checkpoint
from digitlab.checkpoints.integrity import describe_names, non_finite_tensors
from digitlab.data import DatasetSpec, get_dataset, load_split, normalisation, split_validation
from digitlab.data.augment import Augment, AugmentConfig
from digitlab.data.loader import TensorLoader
from digitlab.devices import resolve_device
from digitlab.errors import ConfigError
from digitlab.files import atomic_path
from digitlab.models import count_parameters, create_model
from digitlab.training import distributed
from digitlab.training.config import PER_BATCH_SCHEDULERS, DataConfig, TrainConfig
from digitlab.training.engine import EvalStats, TrainingDiverged, evaluate, train_one_epoch
from digitlab.training.optim import create_optimizer, create_scheduler
from digitlab.training.precision import MixedPrecision, mixed_precision
from digitlab.training.real_folders import RealFolder, load_real_folders, score_real_folders
from digitlab.training.resume import Continuation, find_continuation, remove_stale_temp_files
from digitlab.training.runs import (
    BEST,
    CONFIG,
    LAST,
    METRICS,
    TUTORIAL_WEIGHTS,
    EpochRecord,
    History,
    RunRecord,
    TrainPoint,
    checkpoint_history,
    load_run,
    save_run,
)
from digitlab.training.tensorboard import TensorBoardLog

logger = logging.getLogger(__name__)

SYNTHETIC_CACHE = "synthetic"  # the folder under the data root that keeps rendered training digits

Scheduler = torch.optim.lr_scheduler.LRScheduler


@dataclass
class _Batches:
    """A run's splits as batches on its device, and the normalisation the checkpoint records."""

    spec: DatasetSpec
    mean: float
    std: float
    train: TensorLoader
    test: TensorLoader
    val: TensorLoader | None  # the validation split, where the run holds one out
    train_images: int  # in the training split, typeset and re-drawn digits included
    real: list[RealFolder]  # --val-real folders, preprocessed once: judged, never trained on


@dataclass
class _Learner:
    model: nn.Module  # what gets saved
    trained: nn.Module  # what the batches go through: `model`, wrapped for DDP under torchrun
    optimizer: torch.optim.Optimizer
    scheduler: Scheduler | None
    per_batch: bool  # the scheduler steps after every batch, not every epoch
    precision: MixedPrecision | None  # --amp: autocast (and fp16's loss scaler); None: float32


def train(config: TrainConfig, data: DataConfig, run_dir: Path, resume: bool = False,
          on_epoch: Callable[[EpochRecord], None] | None = None) -> RunRecord:
    """Train `config` on `data`, writing everything to `run_dir`; continue it from its last.pt
    when it has one (training.resume: the settings must match; `epochs` may grow). `resume`
    says the caller expects a continuation: without a last.pt it starts at epoch 1, saying so.

    Under torchrun each process trains on its shard of every epoch with gradients all-reduced
    (DistributedDataParallel); rank 0 alone writes the run folder. `on_epoch` is called on rank 0
    with each epoch's record once the epoch is saved; an exception it raises (a study pruning
    the run) ends the run there, its folder resumable.
    """
    device = resolve_device(config.device)
    ranks = distributed.from_environment(device)
    try:
        record = _train(config, data, ranks.broadcast(run_dir), resume, ranks, ranks.device(device),
                        on_epoch)
    except BaseException:
        distributed.shutdown(ranks, wait_for_others=False)  # they may be stuck in a collective
        raise
    distributed.shutdown(ranks)
    return record


def _train(config: TrainConfig, data: DataConfig, run_dir: Path, resume: bool,
           ranks: distributed.Distributed, device: torch.device,
           on_epoch: Callable[[EpochRecord], None] | None = None) -> RunRecord:
    continuation = _prepare_folder(config, data, run_dir, resume, ranks)
    config = continuation.config if continuation is not None else config
    precision = mixed_precision(config.amp, device)  # refused before the data loads
    board = TensorBoardLog.open(run_dir) if config.tensorboard and ranks.is_main else None
    torch.manual_seed(config.seed)
    batches = _load_batches(config, data, ranks, device)
    learner = _build_learner(config, len(batches.spec.classes), len(batches.train), ranks, device,
                             precision)
    record, start_epoch = _new_record(config, data, run_dir, device, learner.model), 1
    if continuation is not None:
        start_epoch = _restore(continuation, learner)
        record = dataclasses.replace(record, history=checkpoint_history(continuation.checkpoint))
        if continuation.extended and ranks.is_main:
            save_run(dataclasses.replace(continuation.saved, config=config), CONFIG)
    elif ranks.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_run(record, CONFIG)
    logger.info(
        "training %s (%d parameters) on %s%s, %d training images%s; run folder %s",
        config.model, record.parameters, device,
        f" in {str(precision.dtype).removeprefix('torch.')} autocast" if precision else "",
        batches.train_images, f" in {ranks.world_size} processes" if ranks.enabled else "", run_dir,
    )
    epochs = 1 if config.dry_run else config.epochs
    best = record.best_score
    try:
        for epoch in range(start_epoch, epochs + 1):
            tested = _run_epoch(config, epoch, epochs, batches, learner, ranks, record.history)
            if ranks.is_main:
                best = _save_epoch(config, record, batches, learner, epoch, best)
                if board is not None:
                    board.write_epoch(record.history, tested, list(batches.spec.classes))
                if on_epoch is not None:
                    on_epoch(record.history.epochs[-1])
    finally:
        if board is not None:
            board.close()
    if ranks.enabled:
        record = _check_ranks(record, learner.model, ranks)
    return _finish(config, learner.model, record, write=ranks.is_main)


def _prepare_folder(config: TrainConfig, data: DataConfig, run_dir: Path, resume: bool,
                    ranks: distributed.Distributed) -> Continuation | None:
    """Clear what killed saves left behind; the continuation of `run_dir`, if it has a last.pt."""
    if ranks.is_main and run_dir.is_dir():
        remove_stale_temp_files(run_dir)
    continuation = find_continuation(config, data, run_dir)
    if continuation is None and resume:
        logger.warning("%s has no %s (no epoch finished yet): starting at epoch 1", run_dir, LAST)
    elif continuation is not None and continuation.start_epoch > continuation.config.epochs:
        logger.info("%s has finished its %d epochs: nothing to train (--epochs N trains it "
                    "further)", run_dir, continuation.config.epochs)
    return continuation


def _new_record(config: TrainConfig, data: DataConfig, run_dir: Path, device: torch.device,
                model: nn.Module) -> RunRecord:
    return RunRecord(
        path=run_dir, config=config, data=data, device=str(device),
        parameters=count_parameters(model),
        versions={"digitlab": __version__, "torch": torch.__version__,
                  "python": platform.python_version()},
        machine={"platform": platform.platform(), "processor": platform.processor()},
        started=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )


def _load_batches(config: TrainConfig, data: DataConfig, ranks: distributed.Distributed,
                  device: torch.device) -> _Batches:
    spec = get_dataset(data.dataset)
    train_x, train_y = load_split(data.root, train=True, spec=spec, limit=data.train_limit)
    train_x, train_y, val = split_validation(train_x, train_y, data.val_split)
    mean, std = normalisation(spec, train_x)
    spec = dataclasses.replace(spec, mean=mean, std=std)
    train_x, train_y = _add_synthetic(train_x, train_y, config, data)
    test_x, test_y = load_split(data.root, train=False, spec=spec, limit=data.test_limit)
    val_batches = TensorLoader(*val, config.test_batch_size, mean=mean, std=std,
                               device=device) if val else None
    augment = Augment(AugmentConfig(**config.augment)) if config.augment is not None else None
    train_batches = TensorLoader(
        train_x, train_y, config.batch_size, shuffle=True, seed=config.seed, augment=augment,
        shard=ranks.rank, num_shards=ranks.world_size, mean=mean, std=std, device=device,
    )
    test_batches = TensorLoader(test_x, test_y, config.test_batch_size, mean=mean, std=std,
                                device=device)
    real = load_real_folders(data.val_real, spec, mean, std, config.test_batch_size, device)
    return _Batches(spec, mean, std, train_batches, test_batches, val_batches, len(train_x), real)


def _build_learner(config: TrainConfig, classes: int, steps_per_epoch: int,
                   ranks: distributed.Distributed, device: torch.device,
                   precision: MixedPrecision | None = None) -> _Learner:
    model = create_model(config.model, num_classes=classes, **config.model_args)
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)  # inputs are N×1×H×W: same layout either way
    model = ranks.sync_batchnorm(model, device)  # before the optimiser sees its parameters
    optimizer = create_optimizer(config, model.parameters())
    scheduler = create_scheduler(config, optimizer, steps_per_epoch)
    per_batch = scheduler is not None and config.scheduler in PER_BATCH_SCHEDULERS
    return _Learner(model, ranks.wrap(model), optimizer, scheduler, per_batch, precision)


def _run_epoch(config: TrainConfig, epoch: int, epochs: int, batches: _Batches, learner: _Learner,
               ranks: distributed.Distributed, history: History) -> EvalStats:
    """Train and test one epoch; add what it measured to `history`; return the test result."""
    limit = 1 if config.dry_run else None
    batches.train.set_epoch(epoch)
    lr = learner.optimizer.param_groups[0]["lr"]
    scheduler = learner.scheduler
    try:
        stats = train_one_epoch(
            learner.trained, batches.train, learner.optimizer, log_interval=config.log_interval,
            max_batches=limit, progress=config.progress and ranks.is_main,
            description=f"epoch {epoch}/{epochs}",
            step_hook=scheduler.step if scheduler is not None and learner.per_batch else None,
            label_smoothing=config.label_smoothing, loss=config.loss, precision=learner.precision,
        )
    except TrainingDiverged as e:
        raise _diverged(config, epoch, f"at batch {e.batch}: the loss is {e.loss}") from None
    if scheduler is not None and not learner.per_batch:
        scheduler.step()
    classes = len(batches.spec.classes)
    result = evaluate(learner.model, batches.test, classes, max_batches=limit,
                      mistakes=16 if config.tensorboard and ranks.is_main else 0)
    checked = evaluate(learner.model, batches.val, classes, max_batches=limit) if batches.val else None
    real = score_real_folders(learner.model, batches.real, classes, limit) if batches.real else None
    seen_before, world = history.samples, ranks.world_size  # every rank's batches count
    history.train += [TrainPoint(epoch, seen_before + world * s, loss) for s, loss in stats.log]
    history.epochs.append(EpochRecord(
        epoch=epoch, samples=seen_before + world * stats.samples,
        train_loss=ranks.mean(stats.loss), test_loss=result.loss, accuracy=result.accuracy, lr=lr,
        seconds=stats.seconds + result.seconds, images_per_s=stats.images_per_s * world,
        val_loss=checked.loss if checked else None,
        val_accuracy=checked.accuracy if checked else None,
        real=real, real_mean=sum(real.values()) / len(real) if real else None,
    ))
    logger.info(
        "epoch %d/%d: %s%stest loss %.4f, accuracy %.2f%% (%d/%d), %.1f s (%.0f images/s)",
        epoch, epochs, f"validation {100 * checked.accuracy:.2f}%, " if checked else "",
        _describe_real(history.epochs[-1]),
        result.loss, 100 * result.accuracy, result.correct, result.total,
        stats.seconds + result.seconds, stats.images_per_s,
    )
    return result


def _describe_real(epoch: EpochRecord) -> str:
    """`real 97.1% (real-digits 98.6%, mine 95.5%), ` for the log line; "" without --val-real."""
    if not epoch.real or epoch.real_mean is None:
        return ""
    each = ", ".join(f"{name} {100 * accuracy:.1f}%" for name, accuracy in epoch.real.items())
    return f"real {100 * epoch.real_mean:.1f}% ({each}), "


def _diverged(config: TrainConfig, epoch: int, what: str) -> TrainingDiverged:
    saved = f"{LAST} keeps epoch {epoch - 1}" if epoch > 1 else "no checkpoint was written"
    return TrainingDiverged(f"training diverged in epoch {epoch} {what} (lr {config.lr:g}); "
                            f"{saved}: train again with a lower --lr")


def _save_epoch(config: TrainConfig, record: RunRecord, batches: _Batches, learner: _Learner,
                epoch: int, best: float) -> float:
    """Write last.pt, best.pt when this epoch is the best so far, and metrics.json; return the
    best score. Weights holding a NaN or an infinity are never saved."""
    broken = non_finite_tensors(learner.model.state_dict())
    if broken:
        raise _diverged(config, epoch, f"(weights {describe_names(broken)} hold NaN or inf)")
    checkpoint = _checkpoint(config, batches, learner, epoch, record.history)
    save_checkpoint(record.path / LAST, checkpoint)
    # --select-by: by default the test set picks only without a validation split
    score = record.history.epochs[-1].selection_score(record.data.select_by if record.data else None)
    if score >= best:
        best = score
        save_checkpoint(record.path / BEST, checkpoint)
    save_run(record, METRICS)
    return best


def _check_ranks(record: RunRecord, model: nn.Module, ranks: distributed.Distributed) -> RunRecord:
    """Every rank must end with the same weights: record whether they did."""
    checksums = ranks.gather(distributed.weights_checksum(model))
    record = dataclasses.replace(record, rank_checksums=tuple(checksums))
    if ranks.is_main:
        save_run(record, METRICS)
    if not record.ranks_agree:
        logger.error("the ranks' weights differ at the end: %s", checksums)
    return record


def _add_synthetic(images: torch.Tensor, labels: torch.Tensor, config: TrainConfig,
                   data: DataConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The training split plus the recipe's typeset, re-drawn and styled digits and pictures with
    no digit (writing.synthetic)."""
    if not (config.printed or config.redrawn or config.styled or config.junk):
        return images, labels  # no import of the font and stroke machinery, no copy
    from digitlab.writing import synthetic

    def share(count: int) -> int:  # a --train-limit shrinks them in proportion: quick stays quick
        return count if data.train_limit is None else max(count * len(images) // 60_000, 10)

    parts = [(images, labels)]
    cache = data.root / SYNTHETIC_CACHE  # rendered once per seed and code version, then read back
    if not get_dataset(data.dataset).digits:
        raise ConfigError(f"recipe {config.recipe!r} adds typeset and re-drawn digits; "
                          f"{data.dataset} is not a digit data set")
    if config.printed:
        parts.append(synthetic.printed_digits(share(config.printed), config.seed))
    if config.redrawn:
        parts.append(synthetic.redrawn_digits(images, labels, share(config.redrawn), config.seed,
                                              progress=config.progress, cache=cache))
    if config.styled:
        parts.append(synthetic.styled_digits(images, labels, share(config.styled), config.seed,
                                             progress=config.progress, cache=cache))
    if config.junk:
        parts.append(synthetic.junk_digits(share(config.junk), config.seed, progress=config.progress,
                                           cache=cache))
    return torch.cat([x for x, _ in parts]), torch.cat([y for _, y in parts])


def _checkpoint(config: TrainConfig, batches: _Batches, learner: _Learner, epoch: int,
                history: History) -> Checkpoint:
    last, spec = history.epochs[-1], batches.spec
    return Checkpoint(
        model_name=config.model,
        model_args={"num_classes": len(spec.classes), **config.model_args},
        state_dict=learner.model.state_dict(),
        mean=batches.mean, std=batches.std, classes=list(spec.classes), dataset=spec.name,
        epoch=epoch,
        metrics={"accuracy": last.accuracy, "test_loss": last.test_loss,
                 **({"val_accuracy": last.val_accuracy} if last.val_accuracy is not None else {}),
                 **({"real": last.real} if last.real is not None else {}),
                 "history": history.to_dict()},
        config=config.to_dict(),
        optimizer_state=learner.optimizer.state_dict(),
        scheduler_state=learner.scheduler.state_dict() if learner.scheduler is not None else None,
        scaler_state=learner.precision.state_dict() if learner.precision is not None else None,
        rng_state=torch.get_rng_state(),
    )


def _restore(continuation: Continuation, learner: _Learner) -> int:
    """Load last.pt into `learner`; return the epoch to continue from."""
    checkpoint = continuation.checkpoint
    learner.model.load_state_dict(checkpoint.state_dict)
    if checkpoint.optimizer_state:
        learner.optimizer.load_state_dict(checkpoint.optimizer_state)
    if learner.scheduler is not None and checkpoint.scheduler_state:
        learner.scheduler.load_state_dict(checkpoint.scheduler_state)
    if learner.precision is not None:
        learner.precision.load_state_dict(checkpoint.scaler_state)
    if checkpoint.rng_state is not None:
        torch.set_rng_state(checkpoint.rng_state)
    logger.info("resuming %s after epoch %d", continuation.saved.path, checkpoint.epoch)
    return continuation.start_epoch


def _finish(config: TrainConfig, model: nn.Module, record: RunRecord, write: bool) -> RunRecord:
    """Save the tutorial's state_dict if asked; the record as its folder reads back (after a
    resume, with the first start's versions and machine). The caller plots it if it wants
    (digitlab.reports.plots.write_run_plot): training draws nothing."""
    if not write:
        return record
    saved = load_run(record.path)
    if config.save_model:
        # The tutorial's format: a bare state_dict its own classify script can load.
        with atomic_path(record.path / TUTORIAL_WEIGHTS) as tmp:
            torch.save({k: v.cpu() for k, v in model.state_dict().items()}, tmp)
    return saved
