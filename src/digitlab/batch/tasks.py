"""The work `classify` hands to worker processes: a file → its decoded image → the 28×28 the
model will see. No model here: the workers decode and preprocess, the main process classifies.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from digitlab.batch.inputs import Input, InputProblem
from digitlab.errors import DigitlabError
from digitlab.reading.images import load_image
from digitlab.reading.pipelines import preprocess

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    """What to do with each file: preprocess with `pipeline` (None: decode only, as for
    numbers, which are split with the model's help), and whether to send the image back."""

    pipeline: str | None
    keep_image: bool = False


@dataclass
class PreparedFile:
    """One file made ready to classify (pixels and steps), or decoded only, or its error."""

    path: str
    pixels: np.ndarray | None = field(default=None, repr=False)  # 28×28 float32, ink bright
    steps: dict[str, Any] | None = None
    has_ink: bool = False
    alternatives: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # other views
    image: Image.Image | None = field(default=None, repr=False)
    error: str | None = None


def prepare_file(item: Input, task: Task) -> PreparedFile:
    """Decode and preprocess one input; a file that cannot be read gives its error instead."""
    if isinstance(item, InputProblem):
        return PreparedFile(item.path, error=item.error)
    try:
        image = load_image(item)
        if task.pipeline is None:
            return PreparedFile(item, image=image)
        prepared = preprocess(image, task.pipeline)
    except DigitlabError as e:
        return PreparedFile(item, error=str(e))
    except Exception as e:  # one odd image must not end a run over a million: report, go on
        logger.debug("preprocessing %s failed", item, exc_info=True)
        return PreparedFile(item, error=f"{item}: could not be read ({type(e).__name__}: {e}); "
                                        "this is a bug in digitlab, please report it")
    others = {name: pixels.numpy() for name, pixels in prepared.alternatives.items()}
    return PreparedFile(item, prepared.pixels.numpy(), prepared.steps, prepared.has_ink, others,
                        image if task.keep_image else None)


def prepare_files(items: Sequence[Input], task: Task) -> list[PreparedFile]:
    """`prepare_file` for each of a chunk of inputs (one task of a worker process)."""
    return [prepare_file(item, task) for item in items]
