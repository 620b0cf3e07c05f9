"""Export the line reader to ONNX: N×1×32×W pictures (reading.lines.prepare_line) → N×T×11
probabilities, batch and width dynamic.

As for digit models, the export is run beside PyTorch on synthetic fields before the file
appears (temp file, then rename), and refused unless every decoded string is the same and the
probabilities agree to MAX_DIFFERENCE. Decoding (greedy CTC) stays with the caller: it is a
few lines in any language (models.linenet.greedy_decode shows them).
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from digitlab.checkpoints.lines import load_line_checkpoint
from digitlab.errors import ConfigError, DigitlabError
from digitlab.export.exporter import MAX_DIFFERENCE, ExportCheck, ExportError
from digitlab.files import atomic_path
from digitlab.models.linenet import HEIGHT, greedy_decode
from digitlab.predicting.backends import onnx_session

logger = logging.getLogger(__name__)


class LineProbabilities(nn.Module):
    """The net with its output made batch-first probabilities: N×T×11, what a caller decodes."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.eval()

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixels).exp().transpose(0, 1)


def _export(module: nn.Module, example: torch.Tensor, path: Path) -> None:
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ConfigError("ONNX export needs `pip install 'digitlab[export]'`") from None
    # The TorchScript-based exporter: it writes the LSTM as one ONNX LSTM node. Its warning
    # about batch sizes concerns LSTMs given initial states; ours starts from zeros, and the
    # check below runs batches of several sizes.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        torch.onnx.export(module, (example,), str(path), input_names=["pixels"],
                          output_names=["probabilities"], dynamo=False,
                          dynamic_axes={"pixels": {0: "batch", 3: "width"},
                                        "probabilities": {0: "batch", 1: "steps"}})


def _strings(probabilities: torch.Tensor) -> list[str]:
    return [d.text for d in greedy_decode(probabilities.transpose(0, 1).log())]


def export_line_reader(checkpoint: str | os.PathLike[str], out: str | os.PathLike[str],
                       check: list[np.ndarray]) -> ExportCheck:
    """Export the line reader in `checkpoint` to ONNX at `out`, checked on `check` (prepared
    fields, HEIGHT×W each); raises ExportError, and writes nothing, when they disagree."""
    module = LineProbabilities(load_line_checkpoint(checkpoint).build_model())
    widths = sorted({line.shape[1] for line in check})
    batches = [torch.from_numpy(np.stack([line for line in check if line.shape[1] == w])[:, None])
               for w in widths]
    with torch.inference_mode():
        expected = [module(b) for b in batches]
    example = torch.zeros(2, 1, HEIGHT, 64)
    with atomic_path(out) as tmp:
        try:
            _export(module, example, tmp)
            session = onnx_session(tmp)
            got = [torch.from_numpy(session.run(None, {"pixels": b.numpy()})[0]) for b in batches]
        except (DigitlabError, OSError):
            raise
        except Exception as e:  # the exporter raises many kinds; say which step failed
            raise ExportError(f"could not export the line reader to onnx: {type(e).__name__}: {e}") from None
        difference = max(float((g - e).abs().max()) for g, e in zip(got, expected, strict=True))
        same = all(_strings(g) == _strings(e) for g, e in zip(got, expected, strict=True))
        result = ExportCheck(images=len(check), max_difference=difference, same_predictions=same)
        if not same or not difference <= MAX_DIFFERENCE:
            raise ExportError(f"the onnx export of the line reader does not reproduce PyTorch on "
                              f"{len(check)} fields (max difference {difference:.2e}, same strings: "
                              f"{same}); nothing was written")
    logger.info("exported %s: max difference %.2e on %d fields", out, difference, len(check))
    return result
