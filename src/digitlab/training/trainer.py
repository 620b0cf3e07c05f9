"""A whole training run: data, model, epochs, run folder, checkpoints, plot; resumable."""

from __future__ import annotations

import dataclasses
import logging
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from digitlab import __version__
from digitlab.data import DatasetSpec, get_dataset, load_split, normalisation, split_validation
from digitlab.data.augment import Augment, AugmentConfig
from digitlab.data.loader import TensorLoader
from digitlab.errors import ConfigError
from digitlab.files import atomic_path, write_json
from digitlab.models import count_parameters, create_model
from digitlab.training import distributed, runs
from digitlab.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from digitlab.training.config import PER_BATCH_SCHEDULERS, DataConfig, TrainConfig
from digitlab.training.engine import evaluate, resolve_device, train_one_epoch
from digitlab.training.optim import create_optimizer, create_scheduler
from digitlab.training.runs import BEST, CONFIG, LAST, PLOT, History, load_run, write_metrics

logger = logging.getLogger(__name__)


@dataclass
class RunResult:
    run_dir: Path
    accuracy: float
    test_loss: float
    seconds: float
    epochs: int


def _run_config(config: TrainConfig, data: DataConfig, device: torch.device, params: int) -> dict:
    return {
        **config.to_dict(),
        "data": {k: str(v) if isinstance(v, Path) else v for k, v in vars(data).items()},
        "device_resolved": str(device),
        "parameters": params,
        "versions": {
            "digitlab": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "machine": {"platform": platform.platform(), "processor": platform.processor()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def train(config: TrainConfig, data: DataConfig, run_dir: Path, resume: bool = False) -> RunResult:
    """Train `config` on `data`, writing everything to `run_dir`; resume from its last.pt.

    Under torchrun each process trains on its shard of every epoch with gradients all-reduced
    (DistributedDataParallel); rank 0 alone writes the run folder.
    """
    device = resolve_device(config.device)
    ranks = distributed.from_environment(device)
    try:
        return _train(config, data, ranks.broadcast(run_dir), resume, ranks, ranks.device(device))
    finally:
        distributed.shutdown(ranks)


def _train(config: TrainConfig, data: DataConfig, run_dir: Path, resume: bool,
           ranks: distributed.Distributed, device: torch.device) -> RunResult:
    spec = get_dataset(data.dataset)
    torch.manual_seed(config.seed)
    train_x, train_y = load_split(data.root, train=True, spec=spec, limit=data.train_limit)
    train_x, train_y, val = split_validation(train_x, train_y, data.val_split)
    mean, std = normalisation(spec, train_x)
    spec = dataclasses.replace(spec, mean=mean, std=std)  # what the checkpoint records
    train_x, train_y = _add_synthetic(train_x, train_y, config, data)
    test_x, test_y = load_split(data.root, train=False, spec=spec, limit=data.test_limit)
    common = {"mean": spec.mean, "std": spec.std, "device": device}
    val_batches = TensorLoader(*val, config.test_batch_size, **common) if val else None
    augment = Augment(AugmentConfig(**config.augment)) if config.augment is not None else None
    train_batches = TensorLoader(
        train_x, train_y, config.batch_size, shuffle=True, seed=config.seed, augment=augment,
        shard=ranks.rank, num_shards=ranks.world_size, **common,
    )
    test_batches = TensorLoader(test_x, test_y, config.test_batch_size, **common)

    model = create_model(config.model, num_classes=len(spec.classes), **config.model_args)
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)  # inputs are N×1×H×W: same layout either way
    trained = ranks.wrap(model)  # what the batches go through; `model` is what gets saved
    optimizer = create_optimizer(config, model.parameters())
    scheduler = create_scheduler(config, optimizer, len(train_batches))
    per_batch = scheduler is not None and config.scheduler in PER_BATCH_SCHEDULERS
    history, start_epoch = History(), 1
    if resume:
        start_epoch, history = _restore(run_dir, model, optimizer, scheduler)
    elif ranks.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / CONFIG, _run_config(config, data, device, count_parameters(model)))
    logger.info(
        "training %s (%d parameters) on %s, %d training images%s; run folder %s",
        config.model, count_parameters(model), device, len(train_x),
        f" in {ranks.world_size} processes" if ranks.enabled else "", run_dir,
    )
    limit = 1 if config.dry_run else None
    epochs = 1 if config.dry_run else config.epochs
    best = history.best_score
    for epoch in range(start_epoch, epochs + 1):
        train_batches.set_epoch(epoch)
        lr = optimizer.param_groups[0]["lr"]
        stats = train_one_epoch(
            trained, train_batches, optimizer, log_interval=config.log_interval,
            max_batches=limit, progress=config.progress and ranks.is_main,
            description=f"epoch {epoch}/{epochs}",
            step_hook=scheduler.step if per_batch else None,  # type: ignore[union-attr]
            label_smoothing=config.label_smoothing, loss=config.loss,
        )
        if scheduler is not None and not per_batch:
            scheduler.step()
        result = evaluate(model, test_batches, len(spec.classes), max_batches=limit)
        checked = evaluate(model, val_batches, len(spec.classes), max_batches=limit) if val_batches else None
        seen_before = history.epochs[-1]["samples"] if history.epochs else 0
        world = ranks.world_size  # samples seen by the model: every rank's batches count
        history.train += [
            {"epoch": epoch, "samples": seen_before + world * s, "loss": loss} for s, loss in stats.log
        ]
        history.epochs.append({
            "epoch": epoch, "samples": seen_before + world * stats.samples,
            "train_loss": ranks.mean(stats.loss),
            "test_loss": result.loss, "accuracy": result.accuracy, "lr": lr,
            "seconds": stats.seconds + result.seconds,
            "images_per_s": stats.images_per_s * ranks.world_size,
            **({"val_loss": checked.loss, "val_accuracy": checked.accuracy} if checked else {}),
        })
        logger.info(
            "epoch %d/%d: %stest loss %.4f, accuracy %.2f%% (%d/%d), %.1f s (%.0f images/s)",
            epoch, epochs, f"validation {100 * checked.accuracy:.2f}%, " if checked else "",
            result.loss, 100 * result.accuracy, result.correct, result.total,
            stats.seconds + result.seconds, stats.images_per_s,
        )
        if not ranks.is_main:
            continue
        checkpoint = _checkpoint(config, spec, model, optimizer, scheduler, epoch, history)
        save_checkpoint(run_dir / LAST, checkpoint)
        score = runs.selection_score(history.epochs[-1])  # the test set picks only without a split
        if score >= best:
            best = score
            save_checkpoint(run_dir / BEST, checkpoint)
        write_metrics(run_dir, history, _summary(config, device, history))
    if ranks.enabled:  # every rank must end with the same weights; say whether they did
        checksums = ranks.gather(distributed.weights_checksum(model))
        summary = {**_summary(config, device, history), "world_size": ranks.world_size,
                   "rank_checksums": checksums, "ranks_agree": len(set(checksums)) == 1}
        if ranks.is_main:
            write_metrics(run_dir, history, summary)
        if not summary["ranks_agree"]:
            logger.error("the ranks' weights differ at the end: %s", checksums)
    return _finish(config, model, run_dir, history, write=ranks.is_main)


def _add_synthetic(images: torch.Tensor, labels: torch.Tensor, config: TrainConfig,
                   data: DataConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The training split plus the recipe's typeset and re-drawn digits (digitlab.writing.synthetic)."""
    if not (config.printed or config.redrawn):
        return images, labels  # no import of the font and stroke machinery, no copy
    from digitlab.writing import synthetic

    def share(count: int) -> int:  # a --train-limit shrinks them in proportion: quick stays quick
        return count if data.train_limit is None else max(count * len(images) // 60_000, 10)

    parts = [(images, labels)]
    if not get_dataset(data.dataset).digits:
        raise ConfigError(f"recipe {config.recipe!r} adds typeset and re-drawn digits; "
                          f"{data.dataset} is not a digit data set")
    if config.printed:
        parts.append(synthetic.printed_digits(share(config.printed), config.seed))
    if config.redrawn:
        parts.append(synthetic.redrawn_digits(images, labels, share(config.redrawn), config.seed,
                                              progress=config.progress))
    return torch.cat([x for x, _ in parts]), torch.cat([y for _, y in parts])


Scheduler = torch.optim.lr_scheduler.LRScheduler


def _checkpoint(
    config: TrainConfig, spec: DatasetSpec, model: nn.Module, optimizer: torch.optim.Optimizer,
    scheduler: Scheduler | None, epoch: int, history: History,
) -> Checkpoint:
    last = history.epochs[-1]
    return Checkpoint(
        model_name=config.model,
        model_args={"num_classes": len(spec.classes), **config.model_args},
        state_dict=model.state_dict(),
        mean=spec.mean, std=spec.std, classes=list(spec.classes), dataset=spec.name,
        epoch=epoch,
        metrics={"accuracy": last["accuracy"], "test_loss": last["test_loss"],
                 **({"val_accuracy": last["val_accuracy"]} if "val_accuracy" in last else {}),
                 "history": history.to_dict()},
        config=config.to_dict(),
        optimizer_state=optimizer.state_dict(),
        scheduler_state=scheduler.state_dict() if scheduler is not None else None,
        rng_state=torch.get_rng_state(),
    )


def _restore(
    run_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Scheduler | None
) -> tuple[int, History]:
    path = run_dir / LAST
    if not path.is_file():
        raise ConfigError(f"cannot resume {run_dir}: it has no {LAST} (no epoch finished yet)")
    checkpoint = load_checkpoint(path)
    model.load_state_dict(checkpoint.state_dict)
    if checkpoint.optimizer_state:
        optimizer.load_state_dict(checkpoint.optimizer_state)
    if scheduler is not None and checkpoint.scheduler_state:
        scheduler.load_state_dict(checkpoint.scheduler_state)
    if checkpoint.rng_state is not None:
        torch.set_rng_state(checkpoint.rng_state)
    logger.info("resuming %s after epoch %d", run_dir, checkpoint.epoch)
    return checkpoint.epoch + 1, History.from_dict(checkpoint.metrics["history"])


def _summary(config: TrainConfig, device: torch.device, history: History) -> dict[str, Any]:
    last = history.epochs[-1] if history.epochs else {}
    return {
        "model": config.model, "recipe": config.recipe, "device": str(device),
        "epochs_done": len(history.epochs), "accuracy": last.get("accuracy"),
        "test_loss": last.get("test_loss"), "total_seconds": history.total_seconds,
    }


def _finish(config: TrainConfig, model: nn.Module, run_dir: Path, history: History,
            write: bool = True) -> RunResult:
    from digitlab.reports.plots import plot_performance, save_figure

    if write:
        save_figure(plot_performance([load_run(run_dir)]), run_dir / PLOT)
    if config.save_model and write:
        # The tutorial's format: a bare state_dict its own classify script can load.
        with atomic_path(run_dir / "mnist_cnn.pt") as tmp:
            torch.save({k: v.cpu() for k, v in model.state_dict().items()}, tmp)
    last = history.epochs[-1]
    return RunResult(
        run_dir=run_dir, accuracy=last["accuracy"], test_loss=last["test_loss"],
        seconds=history.total_seconds, epochs=len(history.epochs),
    )
