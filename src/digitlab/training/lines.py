"""Training the line reader (models.linenet) on synthetic number fields (writing.lines).

`digitlab train --recipe numbers` runs `train_line_reader`: a fresh stream of fields each
epoch (rendered in a worker process while the net trains), CTC loss, AdamW with a one-cycle
schedule, bfloat16 autocast on CPUs that have it. Each epoch is judged on a fixed set of
synthetic fields (exact strings and digits); the run folder gets config.json, metrics.json,
last.pt and best.pt, like every other run. Real fields are never trained on.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset
from tqdm import tqdm

from digitlab.checkpoints.lines import LineCheckpoint, load_line_checkpoint, save_line_checkpoint
from digitlab.data import load_split, resolve_root
from digitlab.devices import cpu_has_bf16
from digitlab.errors import ConfigError
from digitlab.files import write_json
from digitlab.models.linenet import BLANK, LineNet, greedy_decode, steps_for
from digitlab.reading.lines import batch_lines, prepare_line
from digitlab.writing.lines import GlyphBank, render_line

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LineTrainConfig:
    """The `numbers` recipe. Measured on 2 cores: see the README's numbers table."""

    seed: int = 1
    epochs: int = 8
    lines_per_epoch: int = 50_000
    batch_size: int = 64
    lr: float = 3e-3  # AdamW's peak, one-cycle
    weight_decay: float = 1e-4
    val_lines: int = 1_000  # synthetic fields, fixed by the seed, never trained on
    widths: tuple[int, ...] = (16, 32, 64, 64, 96)
    hidden: int = 96
    amp: str = "auto"  # bfloat16 autocast: auto (where the CPU has bf16 instructions), on, off
    workers: int = 1  # processes rendering fields while the net trains
    log_interval: int = 100  # batches between log lines when no progress bar is shown
    data_dir: str | None = None
    dry_run: bool = False  # two batches of one epoch: a smoke test

    def __post_init__(self) -> None:
        problems = [f"{name} must be at least {least} (got {getattr(self, name)})"
                    for name, least in (("epochs", 1), ("batch_size", 1), ("val_lines", 1))
                    if getattr(self, name) < least]
        if self.lines_per_epoch < self.batch_size:
            problems.append(f"an epoch of {self.lines_per_epoch} fields is less than one batch of "
                            f"{self.batch_size}")
        if not self.lr > 0:
            problems.append(f"lr must be more than 0 (got {self.lr})")
        if problems:
            raise ConfigError("recipe numbers: " + "; ".join(problems))

    def model_args(self) -> dict[str, Any]:
        return {"widths": list(self.widths), "hidden": self.hidden}


@dataclass
class LineHistory:
    epochs: list[dict[str, float]] = field(default_factory=list)


def _bank(config: LineTrainConfig, rng: np.random.Generator) -> GlyphBank:
    # the training split only, verified as every other trainer reads it: never the test digits
    images, labels = load_split(resolve_root(config.data_dir), train=True)
    return GlyphBank.build(images.numpy(), labels.numpy(), rng)


class SyntheticLines(IterableDataset):
    """Batches of freshly rendered fields: (pictures, widths, targets, target lengths).
    Fields are rendered in chunks, sorted by width and cut into batches (little padding)."""

    CHUNK = 16  # batches rendered, sorted and shuffled together

    def __init__(self, config: LineTrainConfig, epoch: int) -> None:
        self.config, self.epoch = config, epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        rng = np.random.default_rng([self.config.seed, self.epoch, worker])
        bank = _bank(self.config, rng)
        b = self.config.batch_size
        total = self.config.lines_per_epoch // b // workers
        for start in range(0, total, self.CHUNK):
            fields = [render_line(bank, rng) for _ in range(b * min(self.CHUNK, total - start))]
            lines = [(prepare_line(image), label) for image, label in fields]
            lines.sort(key=lambda item: item[0].shape[1])
            batches = [lines[i : i + b] for i in range(0, len(lines), b)]
            for k in rng.permutation(len(batches)):
                yield collate(batches[int(k)])


def collate(batch: list[tuple[np.ndarray, str]]) -> tuple[torch.Tensor, ...]:
    pictures, widths = batch_lines([line for line, _ in batch])
    targets = torch.tensor([int(c) for _, label in batch for c in label], dtype=torch.long)
    lengths = torch.tensor([len(label) for _, label in batch], dtype=torch.long)
    return torch.from_numpy(pictures), torch.from_numpy(widths), targets, lengths


def use_bf16(amp: str) -> bool:
    """Whether to train in bfloat16 autocast on the CPU."""
    if amp not in ("auto", "on", "off"):
        raise ConfigError(f"amp must be auto, on or off; got {amp!r}")
    supported = cpu_has_bf16()
    if amp == "on" and not supported:
        raise ConfigError("--amp needs a CPU with bfloat16 instructions (AVX512-BF16 or AMX); "
                          "this one has none: leave --amp off")
    return supported if amp == "auto" else amp == "on"


def loss_of(model: nn.Module, batch: tuple[torch.Tensor, ...], ctc: nn.CTCLoss, bf16: bool) -> torch.Tensor:
    pictures, widths, targets, lengths = batch
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        log_probs = model(pictures)
    return ctc(log_probs.float(), targets, steps_for(widths), lengths)


def validation_set(config: LineTrainConfig) -> list[tuple[np.ndarray, str]]:
    rng = np.random.default_rng([config.seed, 99_991])
    bank = _bank(config, rng)
    return [(prepare_line(image), label) for image, label in
            (render_line(bank, rng) for _ in range(config.val_lines))]


@torch.inference_mode()
def evaluate_lines(model: nn.Module, lines: list[tuple[np.ndarray, str]], bf16: bool,
                   batch_size: int = 128) -> dict[str, float]:
    """Exact strings and digit accuracy (1 - edit distance / length) of `lines`."""
    model.eval()
    order = sorted(range(len(lines)), key=lambda i: lines[i][0].shape[1])
    exact, errors, digits = 0, 0, 0
    for start in range(0, len(order), batch_size):
        chunk = [lines[i] for i in order[start : start + batch_size]]
        pictures, widths = batch_lines([line for line, _ in chunk])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            log_probs = model(torch.from_numpy(pictures))
        for decoded, (_, label) in zip(greedy_decode(log_probs, steps_for(torch.from_numpy(widths))),
                                       chunk, strict=True):
            exact += decoded.text == label
            errors += edit_distance(decoded.text, label)
            digits += len(label)
    return {"exact": exact / max(len(lines), 1), "digits": 1 - errors / max(digits, 1)}


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: insertions, deletions and substitutions to turn `a` into `b`."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[-1]


def _start(config: LineTrainConfig, out: Path, resume: bool) -> tuple[LineNet, Any, Any, int, LineHistory]:
    model = LineNet(config.widths, config.hidden)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                                  foreach=True)
    steps = max(1, config.epochs * (config.lines_per_epoch // config.batch_size))
    # at least 8 steps: the warm-up needs a few, and a smoke test has few batches
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr, total_steps=max(steps + 1, 8),
                                                    pct_start=0.25)
    history, first = LineHistory(), 1
    if resume and (out / "last.pt").is_file():
        saved = load_line_checkpoint(out / "last.pt")
        model.load_state_dict(saved.state_dict)
        optimizer.load_state_dict(saved.training["optimizer"])
        scheduler.load_state_dict(saved.training["scheduler"])
        history.epochs = list(saved.training["history"])
        first = int(saved.training["epoch"]) + 1
        logger.info("resuming %s after epoch %d", out, first - 1)
    return model, optimizer, scheduler, first, history


def train_line_reader(config: LineTrainConfig, out: str | Path, *, resume: bool = False,
                      progress: bool | None = None) -> LineHistory:
    """Train a line reader into run folder `out` (continuing it with `resume`); its history."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", {"recipe": "numbers", **dataclasses.asdict(config)})
    bf16 = use_bf16(config.amp)
    torch.manual_seed(config.seed)
    model, optimizer, scheduler, first, history = _start(config, out, resume)
    ctc = nn.CTCLoss(blank=BLANK, zero_infinity=True)
    val = validation_set(config)
    best = max((e["val_exact"] for e in history.epochs), default=-1.0)
    for epoch in range(first, config.epochs + 1):
        record = _train_epoch(model, optimizer, scheduler, ctc, config, epoch, bf16, progress)
        record.update({f"val_{k}": v for k, v in evaluate_lines(model, val, bf16).items()})
        history.epochs.append(record)
        logger.info("epoch %d: loss %.3f, %.0f fields/s, synthetic fields %.2f%% exact (%.2f%% of digits)",
                    epoch, record["loss"], record["fields_per_s"], 100 * record["val_exact"],
                    100 * record["val_digits"])
        _save(out, model, config, optimizer, scheduler, epoch, history, best_too=record["val_exact"] > best)
        best = max(best, record["val_exact"])
        write_json(out / "metrics.json", {"recipe": "numbers", "epochs": history.epochs})
        if config.dry_run:
            break
    return history


def _train_epoch(model: nn.Module, optimizer: Any, scheduler: Any, ctc: nn.CTCLoss,
                 config: LineTrainConfig, epoch: int, bf16: bool, progress: bool | None) -> dict[str, float]:
    model.train()
    loader = DataLoader(SyntheticLines(config, epoch), batch_size=None, num_workers=config.workers)
    total = config.lines_per_epoch // config.batch_size
    started, seen, losses = time.perf_counter(), 0, []
    bar = tqdm(loader, total=total, desc=f"epoch {epoch}", unit="batch", leave=False,
               disable=None if progress is None else not progress)
    for i, batch in enumerate(bar):
        loss = loss_of(model, batch, ctc, bf16)
        if not math.isfinite(float(loss.detach())):
            raise ConfigError(f"training diverged in epoch {epoch} at batch {i + 1}: "
                              f"the loss is {float(loss)}; train again with a lower --lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        if scheduler.last_epoch < scheduler.total_steps - 1:
            scheduler.step()
        losses.append(float(loss.detach()))
        seen += len(batch[1])
        bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}", refresh=False)
        if bar.disable and (i + 1) % config.log_interval == 0:
            logger.info("epoch %d: batch %d of %d, loss %.3f, %.0f fields/s", epoch, i + 1, total,
                        np.mean(losses[-config.log_interval:]), seen / (time.perf_counter() - started))
        if config.dry_run and i >= 1:
            break
    elapsed = time.perf_counter() - started
    return {"epoch": epoch, "loss": float(np.mean(losses)), "fields_per_s": seen / elapsed,
            "seconds": elapsed}


def _save(out: Path, model: nn.Module, config: LineTrainConfig, optimizer: Any, scheduler: Any,
          epoch: int, history: LineHistory, best_too: bool) -> None:
    checkpoint = LineCheckpoint(
        model_args=config.model_args(), state_dict=model.state_dict(),
        metrics=history.epochs[-1],
        training={"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                  "epoch": epoch, "history": history.epochs},
    )
    save_line_checkpoint(out / "last.pt", checkpoint)
    if best_too:
        save_line_checkpoint(out / "best.pt", dataclasses.replace(checkpoint, training={}))
