"""Read a whole number at once with the line reader (models.linenet): no segmenting.

`LineReader.read_numbers` prepares each picture (reading.lines), runs the net on them as one
batch, decodes each string greedily (CTC) and turns every digit into a `DigitReading`: its
probabilities over the ten digits where the net placed it, and a box found by looking for the
ink between the places of its neighbours. A digit below `min_confidence` reads as '?'; a field
where the net finds no digit is "no digit".
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from digitlab.checkpoints.lines import load_line_checkpoint
from digitlab.errors import CheckpointError, ModelOutputNotFinite
from digitlab.models.linenet import BLANK, STRIDE, Decoded, greedy_decode, steps_for
from digitlab.predicting.results import DigitReading, NumberReading
from digitlab.reading.lines import PreparedLine, batch_lines, prepare
from digitlab.reading.measures import ink_box
from digitlab.reading.parameters import LINES
from digitlab.reading.robust.centring import normalise_digit

SHIPPED = Path(__file__).resolve().parent.parent / "weights" / "numbers.pt"
DIGITS = [str(d) for d in range(10)]
BATCH = 64  # fields per forward pass


class OnnxLines:
    """A line reader exported by `digitlab export` (N×T×11 probabilities), run by onnxruntime
    and answering as the net does (T×N×11 log-probabilities)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        from digitlab.predicting.backends import onnx_session

        self.session = onnx_session(path)

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        probabilities = self.session.run(None, {"pixels": pixels.numpy()})[0]
        return torch.from_numpy(probabilities).transpose(0, 1).clamp_min(1e-30).log()


class LineReader:
    """A line reader's net (or its ONNX export), loaded once."""

    def __init__(self, model: torch.nn.Module | OnnxLines, source: str) -> None:
        self.model, self.source = model, source

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> LineReader:
        """`path` (a checkpoint, or its .onnx export), or the line reader shipped inside the
        package when None."""
        if path is None:
            if not SHIPPED.is_file():
                raise CheckpointError("this install has no packaged line reader; pass --line-model "
                                      "CHECKPOINT or run `make number-model`")
            path = SHIPPED
        if Path(path).suffix.lower() == ".onnx":
            return cls(OnnxLines(path), str(path))
        return cls(load_line_checkpoint(path).build_model(), str(path))

    def __repr__(self) -> str:
        return f"LineReader(source={self.source!r})"

    @torch.inference_mode()
    def read_numbers(self, images: Sequence[Image.Image], min_confidence: float,
                     classes: Sequence[str] = DIGITS) -> list[NumberReading]:
        """One NumberReading per picture; `classes` name the digits (a digit model's own names)."""
        prepared = [prepare(image) for image in images]
        out: list[NumberReading] = []
        for start in range(0, len(prepared), BATCH):
            chunk = prepared[start : start + BATCH]
            pictures, widths = batch_lines([p.pixels for p in chunk])
            log_probs = self.model(torch.from_numpy(pictures)).float()
            if not bool(torch.isfinite(log_probs).all()):
                raise ModelOutputNotFinite(f"{self.source} computes numbers that are not finite "
                                           "(NaN or inf): the line reader is broken; train it again")
            decoded = greedy_decode(log_probs, steps_for(torch.from_numpy(widths)))
            for i, (p, d) in enumerate(zip(chunk, decoded, strict=True)):
                out.append(_reading(p, d, log_probs[:, i].exp(), min_confidence, images[start + i].size,
                                    classes))
        return out


def _reading(p: PreparedLine, decoded: Decoded, probs: torch.Tensor, min_confidence: float,
             size: tuple[int, int], classes: Sequence[str]) -> NumberReading:
    boxes = _boxes(p, decoded)
    digits = []
    for (first, last), box in zip(decoded.spans, boxes, strict=True):
        frames = probs[first : last + 1, :BLANK]
        peak = int(frames.max(dim=1).values.argmax())
        distribution = frames[peak] / frames[peak].sum().clamp_min(1e-12)
        x0, y0, x1, y1 = box
        pixels = normalise_digit(np.clip(p.ink[y0:y1, x0:x1], 0, 1))
        confidence = float(distribution.max())
        reason = None if confidence >= min_confidence else \
            f"confidence {confidence:.2f} is below {min_confidence:.2f}"
        digits.append(DigitReading.of(distribution, classes, pixels, reason=reason, box=box))
    return NumberReading.of(digits, size)


def _boxes(p: PreparedLine, decoded: Decoded) -> list[list[int]]:
    """Each digit's box in the picture: the inked pixels between its neighbours' cuts, each cut
    at the column with the least ink between two digits' places (the whole writing's height
    when a digit's columns hold no clear ink)."""
    if not decoded.spans:
        return []
    x0, y0, x1, y1 = p.box
    ink = p.ink[y0:y1, x0:x1] >= LINES.crop_level
    per_column = (x1 - x0) / max(p.pixels.shape[1], 1)  # picture px per net px
    centres = [int(STRIDE * (a + b + 1) / 2 * per_column) for a, b in decoded.spans]
    profile = ink.sum(axis=0)
    cuts = [0]
    for u, v in zip(centres, centres[1:], strict=False):
        between = profile[u : max(v, u + 1)]
        emptiest = np.flatnonzero(between == between.min()) if between.size else np.array([0])
        cuts.append(u + int(emptiest[len(emptiest) // 2]))  # the middle of the emptiest columns
    cuts.append(ink.shape[1])
    boxes = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        b = max(b, a + 1)
        inked = ink_box(ink[:, a:b], 0)
        if inked is None:
            boxes.append([x0 + a, y0, x0 + b, y1])
        else:
            boxes.append([x0 + a + inked[0], y0 + inked[1], x0 + a + inked[2], y0 + inked[3]])
    return boxes
