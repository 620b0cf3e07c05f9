"""digitlab: train, evaluate, serve and explain handwritten-digit recognisers.

The Python API (the README's "Python API" shows it at work)::

    import digitlab

    model = digitlab.load()              # the model shipped with digitlab
    reading = model.read("my-digit.png") # a DigitReading; model.read_number(...) a NumberReading
    run = digitlab.train(recipe="fast")  # a RunRecord: settings, history, where it was written

`import digitlab` stays cheap: torch and the model load on first use.
"""

from __future__ import annotations

import functools
import os
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from digitlab.predicting.predictor import Predictor
    from digitlab.predicting.results import DigitReading
    from digitlab.reading.images import ImageInput
    from digitlab.training.runs import RunRecord

try:
    __version__ = version("digitlab")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "load", "read", "train"]


def load(path: str | os.PathLike[str] | None = None, device: str = "cpu", *,
         threads: int | None = 1) -> Predictor:
    """A model ready to read images (a `digitlab.predicting.predictor.Predictor`).

    `path`: a checkpoint from `digitlab train` or `digitlab pack`, an `.onnx` file from
    `digitlab export` (run by onnxruntime), or None for the model shipped with digitlab.
    Then `model.read(image)` → DigitReading, `model.read_number(image)` → NumberReading,
    `model.predict(pixels)` → N×C probabilities of N×28×28 floats in [0, 1].

    `threads`: torch's CPU threads for this process (`torch.set_num_threads`), 1 by default as
    the CLI and the service use: one picture is a batch of a few 28×28 views, which more
    threads only slow down on a busy machine (a median of 20-96 ms a read with torch's default
    on 2 busy cores, 3.2-3.5 ms with one). None leaves torch's setting as it is.
    """
    import torch

    from digitlab.predicting.predictor import Predictor

    if threads is not None:
        torch.set_num_threads(threads)
    return Predictor.load(path, device)


@functools.cache
def _shipped_model() -> Predictor:
    return load()


def read(image: ImageInput, model: Predictor | str | os.PathLike[str] | None = None) -> DigitReading:
    """The digit in `image` (a path, bytes, a PIL image or a numpy array: H×W grey or H×W×3/4,
    uint8 or float in [0, 1]), read by `model`: a loaded model, a path for `load`, or None for
    the shipped model (loaded once, then kept)."""
    from digitlab.predicting.predictor import Predictor

    if model is None:
        model = _shipped_model()
    elif not isinstance(model, Predictor):
        model = load(model)
    return model.read(image)


def train(recipe: str = "fast", out: str | os.PathLike[str] | None = None, **options: Any) -> RunRecord:
    """Train `recipe` into the run folder `out`; see digitlab.training.api.train for the options."""
    from digitlab.reports.plots import write_run_plot  # torch loads on the first call
    from digitlab.training.api import train as train_recipe

    record = train_recipe(recipe, out, **options)
    write_run_plot(record)
    return record
