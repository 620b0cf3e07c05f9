"""`classify`'s files as lists: the inputs expanded, and every file read at once."""

from __future__ import annotations

from collections.abc import Sequence

from digitlab.batch.inputs import InputProblem, iter_inputs
from digitlab.batch.stream import FileReading, StreamOptions, classify_stream, worker_pool
from digitlab.predicting.predictor import MIN_CONFIDENCE, Predictor


def expand_inputs(inputs: Sequence[str], recursive: bool = False) -> list[str]:
    """Files as given, folders as their images (sorted), globs expanded (sorted): `iter_inputs`
    as a list of paths (a folder that cannot be listed is kept as its path)."""
    return [item.path if isinstance(item, InputProblem) else item for item in iter_inputs(inputs, recursive)]


def classify_files(
    predictor: Predictor,
    paths: Sequence[str],
    *,
    top_k: int = 1,
    pipeline: str | None = None,
    min_confidence: float = MIN_CONFIDENCE,
    number: bool = False,
    jobs: int = 1,
) -> list[FileReading]:
    """One result per path, in order, each with its decoded image (for pictures); single
    digits are classified in batches. `jobs` > 1 decodes and preprocesses in that many
    worker processes (see batch.stream for a stream that never holds them all)."""
    options = StreamOptions(top_k=top_k, pipeline=pipeline, min_confidence=min_confidence,
                            number=number, keep_images=True)
    if jobs <= 1:
        return list(classify_stream(predictor, paths, options))
    with worker_pool(jobs) as pool:
        return list(classify_stream(predictor, paths, options, pool))
