"""torch.hub entry points: `torch.hub.load("<this repository>", "digitlab")` gives the reader
with the model shipped in the package (`source="local"` for a checkout on disk).

    reader = torch.hub.load("path/to/digitlab", "digitlab", source="local")
    reader.read("my-digit.png")          # DigitReading(digit=7, confidence=0.998)
"""

import os
import sys

dependencies = ["torch", "numpy", "PIL"]  # what torch.hub checks before importing this file

_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "src")


def digitlab(model="default", device="cpu"):
    """A digitlab Predictor: `model` is "default" (the shipped model), a checkpoint from
    `digitlab train`/`pack`, or an ONNX or TorchScript export; `device` where PyTorch runs it."""
    if _SRC not in sys.path:  # the checkout's own package, whether or not digitlab is installed
        sys.path.insert(0, _SRC)
    from digitlab import load

    return load(model, device)
