"""`classify --show`: per input, the original (with digit boxes), the 28×28 seen, probability bars."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from digitlab.batch.stream import FileReading
from digitlab.predicting.results import DigitReading, NumberReading
from digitlab.reports.plots import plot_prediction, save_figure


def write_show(result: FileReading, classes: Sequence[str], folder: Path, index: int,
               nothing: str = "no digit") -> Path:
    """Save the picture for one read file as `folder/<index>-<stem>.png`; `nothing` is what no
    answer is called in its title."""
    reading, image = result.reading, result.image
    if reading is None or image is None:
        raise ValueError(f"{result.path} was not read: nothing to show")
    answer: str | None
    if isinstance(reading, NumberReading):
        answer, reason, digits = reading.text, None, list(reading.digits)
    else:
        answer, reason, digits = reading.label, reading.reason, [reading]
    title = f"{Path(result.path).name}: {answer if answer else nothing}"
    if reason:
        title += f" ({reason})"
    title += _how_seen(digits)
    shown = [d for d in digits if d.probabilities is not None]
    fig = plot_prediction(
        np.asarray(image.convert("RGB")),
        [d.pixels.numpy() for d in shown],
        [list(d.probabilities) for d in shown if d.probabilities is not None],
        classes, title, boxes=[d.box for d in shown if d.box is not None],
    )
    path = folder / f"{index:04d}-{Path(result.path).stem}.png"
    save_figure(fig, path)
    return path


def _how_seen(digits: Sequence[DigitReading]) -> str:
    """A second title line: which of robust's views the model answered from and why
    (reading.robust.views), or how many edges running into the frame were ignored; else nothing."""
    steps = (digits[0].preprocess or {}) if len(digits) == 1 else {}
    views = steps.get("views")
    if views and "chosen" in views:
        return f"\nview: {views['chosen']} ({views['because']}; {views['why']})"
    if steps.get("edges_removed"):
        return f"\n{steps['edges_removed']} edge(s) running into the frame ignored"
    return ""


def write_shows(results: Sequence[FileReading], classes: Sequence[str], folder: Path,
                nothing: str = "no digit") -> dict[int, Path]:
    """A picture for each file that was read, by its position in `results`."""
    return {i: write_show(r, classes, folder, i, nothing) for i, r in enumerate(results)
            if r.reading is not None}
