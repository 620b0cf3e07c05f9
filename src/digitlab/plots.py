"""Figures as matplotlib objects (Agg); callers decide where to save them."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib
import matplotlib.patches

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


def plot_prediction(
    original: np.ndarray,
    seen: Sequence[np.ndarray],
    probabilities: Sequence[Sequence[float]],
    classes: Sequence[str],
    title: str,
    boxes: Sequence[Sequence[int]] = (),
) -> Figure:
    """What the model was given and what it said: the original (with digit boxes, if any),
    each 28×28 input the model saw, and its class probabilities as bars."""
    n = max(len(seen), 1)
    fig = Figure(figsize=(3.2 + 2.2 * n, 4.2), layout="constrained")
    grid = fig.add_gridspec(2, n + 1, height_ratios=[3, 2], width_ratios=[1.6] + [1] * n)
    ax = fig.add_subplot(grid[:, 0])
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
