"""The one training loop and the one evaluation loop, used by train, evaluate, study and bench."""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from digitlab.errors import DigitlabError
from digitlab.training.precision import MixedPrecision

logger = logging.getLogger(__name__)


class TrainingDiverged(DigitlabError):
    """The training loss stopped being a finite number."""

    def __init__(self, message: str, batch: int | None = None, loss: float | None = None) -> None:
        super().__init__(message)
        self.batch = batch  # 1-based, within the epoch
        self.loss = loss


@dataclass
class TrainStats:
    """One epoch of training: mean loss, samples seen, wall time, logged loss points."""

    loss: float
    samples: int
    seconds: float
    log: list[tuple[int, float]] = field(default_factory=list)  # (samples seen in epoch, loss)

    @property
    def images_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0


@dataclass
class EvalStats:
    """Loss, accuracy and confusion matrix (rows: true class, columns: predicted)."""

    loss: float
    correct: int
    total: int
    confusion: torch.Tensor
    seconds: float
    # up to `mistakes` misread images (as the model saw them, 1×H×W on the CPU), true, predicted
    mistakes: list[tuple[torch.Tensor, int, int]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    @property
    def per_class_accuracy(self) -> list[float]:
        totals = self.confusion.sum(dim=1).clamp(min=1)
        return (self.confusion.diagonal() / totals).tolist()


def train_one_epoch(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    *,
    log_interval: int = 10,
    max_batches: int | None = None,
    progress: bool = True,
    description: str = "train",
    step_hook: Callable[[], None] | None = None,
    label_smoothing: float = 0.0,
    loss: str = "nll",
    precision: MixedPrecision | None = None,
) -> TrainStats:
    """Train `model` (which returns log-probabilities) for one pass over `batches`.

    `loss` is "nll" (cross-entropy) or "mse": squared error between the softmax probabilities
    and one-hot targets, as part 2 of the tutorial tried. The loss is read back (a host sync)
    only every `log_interval` batches and at the end; where it is then not finite, this raises
    TrainingDiverged naming the first batch whose loss was not. `step_hook` runs after each
    optimiser step; `precision` runs the step under autocast (training.precision). With
    `progress`, a bar only on a terminal; in a log, a debug line per logged loss (`-v`).
    """
    model.train()
    total = len(batches) if hasattr(batches, "__len__") else None  # type: ignore[arg-type]
    total = min(total, max_batches) if max_batches is not None and total is not None else total
    bar = _progress_bar(total, description, progress)
    log: list[tuple[int, float]] = []
    weighted: list[torch.Tensor] = []
    seen = 0
    start = time.perf_counter()
    for i, (images, labels) in enumerate(batches):
        if max_batches is not None and i >= max_batches:
            break
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast() if precision is not None else contextlib.nullcontext():
            value_t = _loss(model(images), labels, loss, label_smoothing)
        if precision is not None:
            precision.backward_and_step(value_t, optimizer)
        else:
            value_t.backward()
            optimizer.step()
        if step_hook is not None:
            step_hook()
        seen += len(labels)
        weighted.append(value_t.detach().float() * len(labels))  # stays on the device: no sync here
        if i % log_interval == 0:
            value = value_t.item()  # the sync the log needs anyway, so checking it is free
            if not math.isfinite(value):
                raise _diverged(weighted)
            log.append((seen, value))
            _show_loss(bar, f"{description}: batch {i + 1}{f'/{total}' if total else ''}", value,
                       seen / max(time.perf_counter() - start, 1e-9))
        bar.update(1)
    bar.close()
    mean_loss = torch.stack(weighted).sum().item() / seen if seen else 0.0
    seconds = time.perf_counter() - start  # after the sync above, so device work is counted
    if not math.isfinite(mean_loss):
        raise _diverged(weighted)
    return TrainStats(loss=mean_loss, samples=seen, seconds=seconds, log=log)


def _progress_bar(total: int | None, description: str, progress: bool) -> tqdm:
    # disable=None: tqdm draws only when stderr is a terminal, never `\r` redraws into a log file
    return tqdm(total=total, desc=description, unit="batch", disable=None if progress else True,
                leave=False, file=sys.stderr, dynamic_ncols=True)


def _show_loss(bar: tqdm, where: str, loss: float, speed: float) -> None:
    """The current loss and speed: on the bar, or as a debug line where no bar is drawn."""
    if bar.disable:
        logger.debug("%s, loss %.4f, %.0f images/s", where, loss, speed)
    else:
        bar.set_postfix(loss=f"{loss:.4f}", img_s=f"{speed:.0f}", refresh=False)


def _diverged(weighted: list[torch.Tensor]) -> TrainingDiverged:
    """The error for the first batch among `weighted` (loss × batch size) whose loss is not finite."""
    losses = torch.stack(weighted).cpu()
    bad = (~torch.isfinite(losses)).nonzero()
    index = int(bad[0]) if len(bad) else len(losses) - 1
    loss = float(losses[index])
    return TrainingDiverged(f"the training loss is {loss} at batch {index + 1}", index + 1, loss)


def _loss(log_probs: torch.Tensor, labels: torch.Tensor, name: str, smoothing: float) -> torch.Tensor:
    """The batch's mean loss. A row labelled NOT_A_DIGIT (a picture with no digit) is asked for
    even odds over every class (outlier exposure: cross-entropy, or squared error, against the
    uniform distribution), so the model learns to be unsure on junk."""
    classes = log_probs.shape[1]
    known = labels >= 0
    if name == "mse":
        one_hot = F.one_hot(labels.clamp(min=0), classes).to(log_probs.dtype)
        target = torch.where(known[:, None], one_hot * (1 - smoothing) + smoothing / classes,
                             torch.full_like(one_hot, 1 / classes))
        return F.mse_loss(log_probs.exp(), target)  # mean over all N×C cells, like nn.MSELoss()
    if name != "nll":
        raise ValueError(f"unknown loss {name!r}")
    picked = log_probs.gather(1, labels.clamp(min=0)[:, None]).squeeze(1)
    uniform = log_probs.mean(dim=1)  # minus the cross-entropy against even odds
    return torch.where(known, -(1 - smoothing) * picked - smoothing * uniform, -uniform).mean()


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    num_classes: int = 10,
    *,
    max_batches: int | None = None,
    mistakes: int = 0,
) -> EvalStats:
    """Summed NLL loss / N, accuracy and confusion matrix of `model` over `batches`, and the
    first `mistakes` misread images."""
    model.eval()
    start = time.perf_counter()
    loss_sum = 0.0
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
    kept: list[tuple[torch.Tensor, int, int]] = []
    for i, (images, labels) in enumerate(batches):
        if max_batches is not None and i >= max_batches:
            break
        output = model(images)
        loss_sum += F.nll_loss(output, labels, reduction="sum").item()
        predicted = output.argmax(dim=1)
        pairs = (labels * num_classes + predicted).cpu()
        confusion += torch.bincount(pairs, minlength=num_classes**2).view(num_classes, num_classes)
        if len(kept) < mistakes:
            wrong = (predicted != labels).nonzero().flatten()[: mistakes - len(kept)].cpu()
            kept += [(images[j].float().cpu(), int(labels[j]), int(predicted[j])) for j in wrong]
    total = int(confusion.sum())
    return EvalStats(
        loss=loss_sum / max(total, 1),
        correct=int(confusion.diagonal().sum()),
        total=total,
        confusion=confusion,
        seconds=time.perf_counter() - start,
        mistakes=kept,
    )
