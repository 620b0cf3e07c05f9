"""The preprocessing pipelines by name: an image → the 28×28 a model of each data set expects.

`robust` (digits: find, crop and centre the ink, as MNIST was made, with plain views when
the lighting is in doubt) lives in `views.py`; `plain` (invert, Otsu, crop, 20 px, centre by
mass) in `plain.py`; `naive` (the tutorial's squash) in `preprocess.py`; `product`
(Fashion-MNIST's recipe) in `products.py`. This registry sits above them all.
"""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image

from digitlab.errors import ConfigError
from digitlab.reading.canvas import Prepared
from digitlab.reading.naive import preprocess_naive
from digitlab.reading.plain import preprocess_plain
from digitlab.reading.products import preprocess_product
from digitlab.reading.robust.views import preprocess_robust

PIPELINES: dict[str, Callable[[Image.Image], Prepared]] = {
    "naive": preprocess_naive, "plain": preprocess_plain, "robust": preprocess_robust,
    "product": preprocess_product,
}
DEFAULT_PIPELINE = "robust"


def preprocess(image: Image.Image, pipeline: str = DEFAULT_PIPELINE) -> Prepared:
    """Run the named preprocessing pipeline on `image`."""
    if pipeline not in PIPELINES:
        raise ConfigError(f"unknown preprocessing pipeline {pipeline!r}; "
                          f"choose from {', '.join(PIPELINES)}")
    return PIPELINES[pipeline](image)
