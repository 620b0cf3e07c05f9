"""Figures as matplotlib objects (Agg); callers decide where to save them."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib
import matplotlib.patches

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from digitlab.files import atomic_path  # noqa: E402
from digitlab.training.runs import PLOT, EpochRecord, RunRecord  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from digitlab.reports.calibration import Reliability


def _format_seconds(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{seconds:.1f} s"


def plot_performance(
    runs: Sequence[RunRecord], labels: Sequence[str] | None = None, title: str | None = None
) -> Figure:
    """The tutorial's two panels: training loss and test accuracy against samples seen; a run
    judged by real folders (`train --val-real`) adds a dashed line per folder to the second.

    `labels` name the runs in the legend (default: folder and model); `title` replaces the
    default heading.
    """
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    names = list(labels) if labels is not None else [run.label for run in runs]
    judged = any(e.real for run in runs for e in run.history.epochs)
    for run, name in zip(runs, names, strict=True):
        train, epochs = run.history.train, run.history.epochs
        label = name if len(runs) > 1 else None
        loss_ax.plot([p.samples for p in train], [p.loss for p in train], lw=0.8, label=label)
        acc_ax.plot(
            [e.samples for e in epochs], [100 * e.accuracy for e in epochs],
            marker="o", ms=3, label=label or ("test" if judged else None),
        )
        _plot_real(acc_ax, epochs, label)
    losses = "/".join(sorted({run.config.loss.upper() for run in runs}))
    loss_ax.set(xlabel="training samples seen", ylabel=f"training loss ({losses or 'NLL'})",
                title="Training loss")
    loss_ax.set_yscale("log")
    acc_ax.set(xlabel="training samples seen", ylabel="test accuracy (%)", title="Test accuracy")
    if judged:
        acc_ax.set(ylabel="accuracy (%)", title="Test accuracy and real folders (dashed)")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        if len(runs) > 1 or (judged and ax is acc_ax):
            ax.legend(fontsize=8)
    if title is not None:
        fig.suptitle(title)
    elif len(runs) == 1:
        run = runs[0]
        final = run.accuracy or 0.0
        fig.suptitle(
            f"{run.config.model} on {run.device or '?'}: "
            f"{_format_seconds(run.history.total_seconds)}, final accuracy {100 * final:.2f}%"
        )
    else:
        fig.suptitle(f"{len(runs)} runs compared")
    return fig


def _plot_real(ax: Axes, epochs: Sequence[EpochRecord], run: str | None) -> None:
    """A dashed line per --val-real folder: its accuracy at each epoch that scored it."""
    folders = dict.fromkeys(name for e in epochs for name in e.real or {})
    for folder in folders:
        scored = [e for e in epochs if e.real and folder in e.real]
        ax.plot([e.samples for e in scored], [100 * e.real[folder] for e in scored if e.real],
                ls="--", marker=".", ms=4, lw=1, label=f"{run}: {folder}" if run else folder)


def plot_reliability(panels: Sequence[tuple[str, Reliability]]) -> Figure:
    """Reliability diagrams side by side: accuracy per confidence bin against the diagonal
    (the gap to it shaded), ECE in each title, and below each the bin sizes (log scale)."""
    fig = Figure(figsize=(4.6 * len(panels), 5.6), layout="constrained")
    axes = fig.subplots(2, len(panels), squeeze=False, height_ratios=[3, 1], sharex=True)
    for (title, rel), top, bottom in zip(panels, axes[0], axes[1], strict=True):
        edges = np.asarray(rel.edges)
        left, width = edges[:-1], np.diff(edges)
        filled = np.asarray(rel.counts) > 0
        accuracy, confidence = np.asarray(rel.accuracy), np.asarray(rel.confidence)
        top.bar(left[filled], accuracy[filled], width[filled], align="edge", color="tab:blue",
                edgecolor="white", label="accuracy")
        low, gap = np.minimum(accuracy, confidence)[filled], np.abs(confidence - accuracy)[filled]
        top.bar(left[filled], gap, width[filled], bottom=low, align="edge", facecolor="none",
                edgecolor="tab:red", hatch="///", lw=0.8, label="gap to mean confidence")
        top.plot((left + width / 2)[filled], confidence[filled], "_", color="black", ms=12,
                 label="mean confidence")
        top.plot([0, 1], [0, 1], ls="--", color="gray", lw=1, label="perfectly calibrated")
        top.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy", title=f"{title}: ECE {100 * rel.ece:.2f}%")
        top.legend(loc="upper left", fontsize=8)
        bottom.bar(left, np.maximum(rel.counts, 0), width, align="edge", color="tab:gray")
        bottom.set_yscale("symlog", linthresh=1)
        bottom.set(xlabel="confidence (top-class probability)", ylabel="images")
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
    return fig


def plot_digits(
    images: Sequence[np.ndarray], captions: Sequence[str], title: str = "", per_row: int = 10
) -> Figure:
    """A grid of 28×28 digits (white on black, as in MNIST), each with a caption below."""
    rows = max(-(-len(images) // per_row), 1)
    fig = Figure(figsize=(1.25 * per_row, 1.45 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, per_row, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < len(images):
            ax.imshow(images[i], cmap="gray", vmin=0, vmax=255)
            ax.set_title(captions[i], fontsize=7.5)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_line_history(epochs: Sequence[dict[str, float]],
                      title: str = "Line reader (recipe numbers)") -> Figure:
    """The line reader's training: CTC loss and exact synthetic fields per epoch."""
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    x = [int(e["epoch"]) for e in epochs]
    loss_ax.plot(x, [e["loss"] for e in epochs], marker="o", ms=3)
    loss_ax.set(xlabel="epoch", ylabel="training loss (CTC)", title="Training loss", yscale="log")
    acc_ax.plot(x, [100 * e["val_exact"] for e in epochs], marker="o", ms=3, label="whole field exact")
    acc_ax.plot(x, [100 * e["val_digits"] for e in epochs], marker="o", ms=3, label="digits")
    acc_ax.set(xlabel="epoch", ylabel="synthetic validation fields (%)", title="Validation")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
    acc_ax.legend(fontsize=8)
    fig.suptitle(title)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 120) -> None:
    """Save `fig` as PNG atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)


def write_run_plot(record: RunRecord) -> Path:
    """Save a run's performance plot (`plot_performance`) into its folder; return its path."""
    path = record.path / PLOT
    save_figure(plot_performance([record]), path)
    return path


def plot_prediction(
    original: np.ndarray,
    seen: Sequence[np.ndarray],
    probabilities: Sequence[Sequence[float]],
    classes: Sequence[str],
    title: str,
    boxes: Sequence[Sequence[int]] = (),
    why: np.ndarray | None = None,
) -> Figure:
    """What the model was given and what it said: the original (with digit boxes, if any),
    each 28×28 input the model saw, and its class probabilities as bars; with `why` (the
    original with an explanation's heat over it, predicting.explain) that picture under it."""
    n = max(len(seen), 1)
    fig = Figure(figsize=(3.2 + 2.2 * n, 4.2 if why is None else 6.4), layout="constrained")
    grid = fig.add_gridspec(2, n + 1, height_ratios=[3, 2], width_ratios=[1.6] + [1] * n)
    ax = fig.add_subplot(grid[0, 0] if why is not None else grid[:, 0])
    if why is not None:
        shown = fig.add_subplot(grid[1, 0])
        shown.imshow(why)
        shown.set(title="why: red for the answer,\nblue against it", xticks=[], yticks=[])
    ax.imshow(original, cmap="gray" if original.ndim == 2 else None)
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        ax.add_patch(matplotlib.patches.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False,
                                                  edgecolor="tab:red", lw=1.5))
        ax.text(x0, y0, str(i + 1), color="tab:red", va="bottom", fontsize=8)
    ax.set(title="input", xticks=[], yticks=[])
    for i, (pixels, probs) in enumerate(zip(seen, probabilities, strict=True)):
        top = fig.add_subplot(grid[0, i + 1])
        top.imshow(pixels, cmap="gray", vmin=0, vmax=1)
        best = int(np.argmax(probs))
        top.set(title=f"model saw → {classes[best]}", xticks=[], yticks=[])
        bars = fig.add_subplot(grid[1, i + 1])
        colours = ["tab:blue" if k == best else "tab:gray" for k in range(len(probs))]
        bars.bar(range(len(probs)), probs, color=colours)
        bars.set_xticks(range(len(probs)), classes, fontsize=7)
        bars.set_ylim(0, 1)
    fig.suptitle(title, fontsize=10)
    return fig
