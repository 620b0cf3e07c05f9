"""Classify files as a stream: decode and preprocess in worker processes (batch.workers),
classify in batches in this one as the results arrive, yield one FileReading per input in
input order. Memory holds a window of inputs in flight, never the whole folder.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image

from digitlab.batch.inputs import Input
from digitlab.batch.tasks import PreparedFile, Task, prepare_file, prepare_files
from digitlab.batch.workers import OrderedPool, chunked
from digitlab.predicting.predictor import MIN_CONFIDENCE, PREDICT_BATCH, Predictor
from digitlab.predicting.results import DigitReading, NumberReading
from digitlab.reading.canvas import Prepared

WORKER_MODULES = ("digitlab.batch.tasks",)  # what the workers run: imported before they start
CHUNK = 8  # files per worker task: ~10-20 ms of work, so passing it costs ~1%
CHUNKS_AHEAD = 8  # per worker: enough queued that no worker waits for the main process
FLUSH_SECONDS = 0.25  # classify what has arrived at least this often, so lines keep coming


@dataclass(frozen=True)
class FileReading:
    """One input file: what was read in it, or why it could not be read."""

    path: str
    reading: DigitReading | NumberReading | None = None
    error: str | None = None
    image: Image.Image | None = field(default=None, repr=False, compare=False)  # for pictures

    def to_dict(self) -> dict[str, Any]:
        """{"path", ...the reading's JSON} or {"path", "error"}."""
        if self.reading is None:
            return {"path": self.path, "error": self.error}
        return {"path": self.path, **self.reading.to_dict()}


@dataclass(frozen=True)
class StreamOptions:
    """How to read the files (see `Predictor.read_digits` and `read_number`)."""

    top_k: int = 1
    pipeline: str | None = None  # None: the one that suits the model's data set
    min_confidence: float = MIN_CONFIDENCE
    number: bool = False
    keep_images: bool = False  # keep each decoded image in its FileReading (for pictures)


def worker_pool(jobs: int) -> OrderedPool:
    """`jobs` processes to decode and preprocess in, started now: before a model is loaded, so
    that they never hold one (see batch.workers)."""
    return OrderedPool(jobs, WORKER_MODULES)


def classify_stream(predictor: Predictor, inputs: Iterable[Input], options: StreamOptions = StreamOptions(),
                    pool: OrderedPool | None = None) -> Iterator[FileReading]:
    """One FileReading per input, in order: decoded and preprocessed in `pool`'s workers (or
    here, without one), classified here in batches of up to PREDICT_BATCH, what has arrived
    at least every FLUSH_SECONDS."""
    task = Task(None if options.number else options.pipeline or predictor.pipeline,
                keep_image=options.keep_images or options.number)
    pending: list[PreparedFile] = []
    oldest = time.monotonic()
    with _prepared_stream(inputs, task, pool) as prepared:
        for files in prepared:
            if files and not pending:
                oldest = time.monotonic()
            pending += files
            if len(pending) >= PREDICT_BATCH or (pending and time.monotonic() - oldest >= FLUSH_SECONDS):
                yield from _classify(predictor, pending, options)
                pending = []
    yield from _classify(predictor, pending, options)


@contextlib.contextmanager
def _prepared_stream(inputs: Iterable[Input], task: Task,
                     pool: OrderedPool | None) -> Iterator[Iterator[list[PreparedFile]]]:
    """Prepared files in input order: a list at a time, or an empty list when none came in a while."""
    if pool is None:
        yield ([prepare_file(item, task)] for item in inputs)
        return
    # Images sent back for pictures or numbers can be large: fewer of them in flight.
    chunk, ahead = (1, 2) if task.keep_image else (CHUNK, CHUNKS_AHEAD)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers have the cores; batches of 28×28 need no more
    try:
        yield pool.map(prepare_files, chunked(inputs, chunk), task, ahead=ahead, wait=FLUSH_SECONDS / 2)
    finally:
        torch.set_num_threads(threads)


def _classify(predictor: Predictor, files: Sequence[PreparedFile],
              options: StreamOptions) -> list[FileReading]:
    readings: dict[int, DigitReading | NumberReading] = {}
    good = [i for i, f in enumerate(files) if f.error is None]
    if options.number:
        for i in good:
            image = files[i].image
            assert image is not None, "numbers are read from the decoded image"
            readings[i] = predictor.read_number(image, options.min_confidence, top_k=options.top_k)
    elif good:
        prepared = [_as_prepared(files[i]) for i in good]
        batch = predictor.read_prepared(prepared, options.min_confidence, top_k=options.top_k)
        readings = dict(zip(good, batch, strict=True))
    return [
        FileReading(f.path, readings[i], image=f.image if options.keep_images else None) if i in readings
        else FileReading(f.path, error=f.error)
        for i, f in enumerate(files)
    ]


def _as_prepared(file: PreparedFile) -> Prepared:
    assert file.pixels is not None, "a file prepared without error has its pixels"
    others = {name: torch.from_numpy(pixels) for name, pixels in file.alternatives.items()}
    return Prepared(torch.from_numpy(file.pixels), file.steps or {}, file.has_ink, others)
