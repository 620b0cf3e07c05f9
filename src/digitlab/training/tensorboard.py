"""TensorBoard event files for a run (`digitlab train --tensorboard`), in RUN/tensorboard/.

Per epoch: the scalars of metrics.json (train, test and validation loss and accuracy, each
--val-real folder's accuracy and their mean, the learning rate, images/s), the training loss
every log interval (against images seen, like `digitlab plot`), the confusion matrix figure
and a few misread test digits. metrics.json stays the record every digitlab command reads;
these files are for watching a run as it trains (`tensorboard --logdir runs/`). Written by
rank 0 only, after the epoch's checkpoint is saved.
Needs the `tensorboard` package: `pip install 'digitlab[tensorboard]'`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from digitlab.errors import ConfigError
from digitlab.training.engine import EvalStats
from digitlab.training.figures import plot_confusion
from digitlab.training.runs import TENSORBOARD, History

logger = logging.getLogger(__name__)

MISREAD_SHOWN = 16  # misread test digits drawn per epoch


def epoch_scalars(history: History) -> dict[str, float]:
    """The last epoch's numbers as TensorBoard tags (the same values metrics.json holds)."""
    last = history.epochs[-1]
    scalars = {"loss/train": last.train_loss, "loss/test": last.test_loss,
               "accuracy/test": last.accuracy, "lr": last.lr, "images_per_s": last.images_per_s}
    if last.val_loss is not None and last.val_accuracy is not None:
        scalars.update({"loss/validation": last.val_loss, "accuracy/validation": last.val_accuracy})
    if last.real and last.real_mean is not None:  # --val-real: each folder by its name
        scalars.update({f"accuracy/real/{name}": value for name, value in last.real.items()})
        scalars["accuracy/real_mean"] = last.real_mean
    return scalars


def _rgb(figure: Any) -> np.ndarray:
    """A matplotlib Figure rendered to an H×W×3 uint8 array (Agg, without pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def misread_figure(mistakes: list[tuple[Any, int, int]], classes: list[str]) -> Any:
    """A grid of misread digits, each titled `true → read`."""
    from matplotlib.figure import Figure

    columns = 8
    rows = max(1, -(-len(mistakes) // columns))
    figure = Figure(figsize=(columns * 1.1, rows * 1.3), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, (image, true, read) in zip(axes.flat, mistakes, strict=False):
        ax.imshow(image.squeeze(0).numpy(), cmap="gray")
        ax.set_title(f"{classes[true]} → {classes[read]}", fontsize=8)
    return figure


class TensorBoardLog:
    """One run's TensorBoard writer."""

    def __init__(self, writer: Any) -> None:
        self.writer = writer

    @classmethod
    def open(cls, run_dir: Path) -> TensorBoardLog:
        """A writer into `run_dir`/tensorboard; ConfigError when tensorboard is not installed."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("--tensorboard needs the tensorboard package: "
                              "pip install 'digitlab[tensorboard]'") from None
        folder = run_dir / TENSORBOARD
        logger.info("TensorBoard event files in %s (tensorboard --logdir %s)", folder, run_dir)
        return cls(SummaryWriter(log_dir=str(folder)))

    def write_epoch(self, history: History, tested: EvalStats, classes: list[str]) -> None:
        """The last epoch of `history`, its test confusion matrix and misread digits."""
        epoch = history.epochs[-1].epoch
        for tag, value in epoch_scalars(history).items():
            self.writer.add_scalar(tag, value, epoch)
        for point in (p for p in history.train if p.epoch == epoch):
            self.writer.add_scalar("loss/train_log", point.loss, point.samples)
        title = f"epoch {epoch}: test accuracy {100 * tested.accuracy:.2f}%"
        confusion = plot_confusion(tested.confusion.numpy(), classes, title)
        self.writer.add_image("confusion", _rgb(confusion), epoch, dataformats="HWC")
        if tested.mistakes:
            figure = misread_figure(tested.mistakes[:MISREAD_SHOWN], classes)
            self.writer.add_image("misread", _rgb(figure), epoch, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
