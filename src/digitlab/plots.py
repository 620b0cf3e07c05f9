"""Figures as matplotlib objects (Agg); callers decide where to save them."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from digitlab.files import atomic_path  # noqa: E402
from digitlab.runs import RunRecord  # noqa: E402


def _format_seconds(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{seconds:.1f} s"


def plot_performance(runs: Sequence[RunRecord]) -> Figure:
    """The tutorial's two panels: training loss and test accuracy against samples seen."""
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    for run in runs:
        train, epochs = run.history.train, run.history.epochs
        label = run.label if len(runs) > 1 else None
        loss_ax.plot([p["samples"] for p in train], [p["loss"] for p in train], lw=0.8, label=label)
        acc_ax.plot(
            [e["samples"] for e in epochs], [100 * e["accuracy"] for e in epochs],
            marker="o", ms=3, label=label,
        )
    loss_ax.set(xlabel="training samples seen", ylabel="training loss (NLL)", title="Training loss")
    loss_ax.set_yscale("log")
    acc_ax.set(xlabel="training samples seen", ylabel="test accuracy (%)", title="Test accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        if len(runs) > 1:
            ax.legend(fontsize=8)
    if len(runs) == 1:
        run = runs[0]
        final = run.history.epochs[-1]["accuracy"] if run.history.epochs else 0.0
        fig.suptitle(
            f"{run.config.get('model', '?')} on {run.config.get('device_resolved', '?')}: "
            f"{_format_seconds(run.history.total_seconds)}, final accuracy {100 * final:.2f}%"
        )
    else:
        fig.suptitle(f"{len(runs)} runs compared")
    return fig


def plot_confusion(confusion: np.ndarray, classes: Sequence[str], title: str = "") -> Figure:
    """Confusion matrix with counts; rows are true classes, columns predictions."""
    confusion = np.asarray(confusion)
    fig = Figure(figsize=(6.5, 5.5), layout="constrained")
    ax = fig.subplots()
    shown = np.log1p(confusion)  # log scale so the few errors are visible beside the diagonal
    image = ax.imshow(shown, cmap="Blues")
    ticks = range(len(classes))
    ax.set_xticks(ticks, classes, rotation=45 if max(map(len, classes)) > 2 else 0)
    ax.set_yticks(ticks, classes)
    ax.set(xlabel="predicted", ylabel="true", title=title or "Confusion matrix")
    threshold = shown.max() / 2
    for (i, j), count in np.ndenumerate(confusion):
        if count:
            colour = "white" if shown[i, j] > threshold else "black"
            ax.text(j, i, str(count), ha="center", va="center", fontsize=7, color=colour)
    fig.colorbar(image, ax=ax, label="log(1 + count)")
    return fig


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 120) -> None:
    """Save `fig` as PNG atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
