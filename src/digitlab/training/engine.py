"""The one training loop and the one evaluation loop, used by train, evaluate, study and bench."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from digitlab.errors import DigitlabError
from digitlab.training.precision import MixedPrecision


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
    optimiser step; `precision` runs the step under autocast (training.precision).
    """
    model.train()
    total = len(batches) if hasattr(batches, "__len__") else None  # type: ignore[arg-type]
    if max_batches is not None and total is not None:
        total = min(total, max_batches)
    bar = tqdm(total=total, desc=description, unit="batch", disable=not progress, leave=False)
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
            elapsed = time.perf_counter() - start
            bar.set_postfix(loss=f"{value:.4f}", img_s=f"{seen / max(elapsed, 1e-9):.0f}")
        bar.update(1)
    bar.close()
    mean_loss = torch.stack(weighted).sum().item() / seen if seen else 0.0
    seconds = time.perf_counter() - start  # after the sync above, so device work is counted
    if not math.isfinite(mean_loss):
        raise _diverged(weighted)
    return TrainStats(loss=mean_loss, samples=seen, seconds=seconds, log=log)


def _diverged(weighted: list[torch.Tensor]) -> TrainingDiverged:
    """The error for the first batch among `weighted` (loss × batch size) whose loss is not finite."""
    losses = torch.stack(weighted).cpu()
    bad = (~torch.isfinite(losses)).nonzero()
    index = int(bad[0]) if len(bad) else len(losses) - 1
    loss = float(losses[index])
    return TrainingDiverged(f"the training loss is {loss} at batch {index + 1}", index + 1, loss)


def _loss(log_probs: torch.Tensor, labels: torch.Tensor, name: str, smoothing: float) -> torch.Tensor:
    if name == "mse":
        classes = log_probs.shape[1]
        target = F.one_hot(labels, classes).to(log_probs.dtype) * (1 - smoothing) + smoothing / classes
        return F.mse_loss(log_probs.exp(), target)  # mean over all N×C cells, like nn.MSELoss()
    if name != "nll":
        raise ValueError(f"unknown loss {name!r}")
    loss = F.nll_loss(log_probs, labels)
    if smoothing:
        loss = (1 - smoothing) * loss - smoothing * log_probs.mean(dim=1).mean()
    return loss


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
