"""Figures of a model's answers on a test set, drawn during training (TensorBoard) and in reports.

Object API only (no pyplot), so no backend is chosen here; matplotlib loads on the first figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def plot_confusion(confusion: np.ndarray, classes: Sequence[str], title: str = "") -> Figure:
    """Confusion matrix with counts; rows are true classes, columns predictions."""
    from matplotlib.figure import Figure

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
