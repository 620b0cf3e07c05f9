"""Why the model said what it said: an occlusion map of the 28×28 view, and its heat drawn back
onto the original picture.

Occlusion (Zeiler & Fergus, 2014) needs nothing from the model but its answers, so it explains
every backend alike (PyTorch, onnxruntime, TorchScript): each PATCH×PATCH square of the view is
blanked in turn and the answer's log-probability is measured again; a pixel's weight is the mean
fall over the squares that hid it (> 0: evidence for the answer, < 0: against it). Drawn, the
weights colour the strokes: red for, blue against.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from digitlab.predicting.results import DigitReading
from digitlab.reading.canvas import CANVAS

PATCH = 4  # px of the 28-px view hidden at once: about one and a half MNIST strokes (2-3 px wide)
STRIDE = 2  # px between squares: 13 × 13 = 169 hidden copies, one batch (~10 ms on a CPU core)
INK = 0.1  # a view pixel at least this bright (of 1) is ink: where the weights are drawn
LAYER_SIDE = 280  # px: the longer side of a heat layer sent to the page (its canvas is 280 px)
FOR, AGAINST = (220, 30, 30), (30, 90, 230)  # RGB of evidence for and against the answer
MAX_ALPHA = 220  # of 255: the strongest weight still lets the stroke under it show
FADE = 0.5  # how far a picture is faded towards white under its heat (dark ink stays visible)

Probabilities = Callable[[torch.Tensor], torch.Tensor]  # N×28×28 in [0, 1] → N×C, as trained


def occlusion_map(probabilities: Probabilities, pixels: torch.Tensor, target: int) -> torch.Tensor:
    """28×28 weights for class `target` of one 28×28 view: the mean fall of its log-probability
    when the pixel is hidden."""
    corners = [(y, x) for y in range(0, CANVAS - PATCH + 1, STRIDE)
               for x in range(0, CANVAS - PATCH + 1, STRIDE)]
    batch = pixels.float().expand(len(corners) + 1, CANVAS, CANVAS).clone()
    for k, (y, x) in enumerate(corners, start=1):
        batch[k, y:y + PATCH, x:x + PATCH] = 0  # MNIST's background: no ink
    # log-probabilities as trained: a calibrated 0.9999 barely moves when a stroke goes
    log_p = probabilities(batch)[:, target].clamp_min(1e-12).log()
    fall = log_p[0] - log_p[1:]
    total, count = torch.zeros(CANVAS, CANVAS), torch.zeros(CANVAS, CANVAS)
    for k, (y, x) in enumerate(corners):
        total[y:y + PATCH, x:x + PATCH] += fall[k]
        count[y:y + PATCH, x:x + PATCH] += 1
    return total / count.clamp_min(1)


@dataclass(frozen=True)
class Explanation:
    """Which strokes of the view decided the answer, and where the view lies in the picture."""

    target: int  # the class explained (the answer, or the likeliest one when there is none)
    label: str
    weights: np.ndarray  # 28×28 float32, see occlusion_map
    pixels: np.ndarray  # 28×28 float32: the view explained (ink bright)
    view_box: tuple[int, int, int, int]  # the ink's box in the view (x0, y0, x1, y1; exclusive)
    picture_box: tuple[int, int, int, int]  # where that box lies in the picture
    size: tuple[int, int]  # the picture's (width, height)

    def view_heat(self) -> Image.Image:
        """28×28 RGBA: the weights on the view's ink (transparent elsewhere)."""
        return _colour(self.weights * (self.pixels >= INK), self.pixels)

    def view_overlay(self, scale: int = 1) -> Image.Image:
        """The 28×28 view (white ink on black, as the model saw it) with the heat over it."""
        base = Image.fromarray(np.round(self.pixels * 255).astype(np.uint8)).convert("RGBA")
        out = Image.alpha_composite(base, self.view_heat()).convert("RGB")
        return out.resize((CANVAS * scale, CANVAS * scale), Image.Resampling.NEAREST) if scale > 1 else out

    def layer(self, max_side: int | None = LAYER_SIDE) -> Image.Image:
        """RGBA heat the picture's size (at most `max_side` px on its longer side), transparent
        outside the digit: to lay over the picture (the page does)."""
        width, height = self.size
        shrink = min(1.0, max_side / max(width, height)) if max_side else 1.0
        out_size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
        x0, y0, x1, y1 = self.view_box
        heat = self.view_heat().crop((x0, y0, x1, y1))
        px0, py0, px1, py1 = (round(v * shrink) for v in self.picture_box)
        layer = Image.new("RGBA", out_size, (0, 0, 0, 0))
        box_size = (max(1, px1 - px0), max(1, py1 - py0))
        layer.paste(heat.resize(box_size, Image.Resampling.BILINEAR), (px0, py0))
        return layer

    def overlay(self, picture: Image.Image, max_side: int | None = None) -> Image.Image:
        """The picture (RGB) with the heat laid over it."""
        return overlay(picture, [self], max_side)


def combined_layer(explanations: Sequence[Explanation], max_side: int | None = LAYER_SIDE) -> Image.Image:
    """One RGBA layer with every explanation's heat (a number's digits, each in its box)."""
    layers = [e.layer(max_side) for e in explanations]
    out = layers[0]
    for layer in layers[1:]:
        out = Image.alpha_composite(out, layer)
    return out


def overlay(picture: Image.Image, explanations: Sequence[Explanation], max_side: int | None = None,
            fade: float = FADE) -> Image.Image:
    """`picture` (RGB, at most `max_side` px a side), faded towards white so colours show on dark
    ink, with each explanation's heat laid over it (a number's digits: one each)."""
    width, height = picture.size
    shrink = min(1.0, max_side / max(width, height)) if max_side else 1.0
    size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
    base = picture.convert("RGB").resize(size, Image.Resampling.BILINEAR)
    out = Image.blend(base, Image.new("RGB", size, "white"), fade).convert("RGBA")
    for explanation in explanations:
        out = Image.alpha_composite(out, explanation.layer(max(size)).resize(size))
    return out.convert("RGB")


def explain(probabilities: Probabilities, reading: DigitReading, classes: Sequence[str],
            size: tuple[int, int]) -> Explanation | None:
    """The occlusion map of `reading`'s view for its answer (or its likeliest class), placed in
    a picture of `size` (width, height); None when nothing was classified (no ink)."""
    if reading.probabilities is None:
        return None
    target = reading.digit if reading.digit is not None else int(np.argmax(reading.probabilities))
    view = explain_view(probabilities, reading.pixels, target, classes)
    return dataclasses.replace(view, picture_box=_picture_box(reading, size),
                               size=(int(size[0]), int(size[1])))


def explain_view(probabilities: Probabilities, pixels: torch.Tensor, target: int,
                 classes: Sequence[str]) -> Explanation:
    """Class `target` explained on a 28×28 view that is its own picture (an MNIST digit)."""
    weights = occlusion_map(probabilities, pixels, target).numpy().astype(np.float32)
    view = pixels.detach().cpu().float().numpy()
    return Explanation(target, classes[target], weights, view, _ink_box(view),
                       (0, 0, CANVAS, CANVAS), (CANVAS, CANVAS))


def _ink_box(view: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(view >= INK)
    if not len(rows):
        return 0, 0, CANVAS, CANVAS
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def _picture_box(reading: DigitReading, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Where the view's ink came from: a number's digit box, the pipeline's ink (or object) box,
    else the whole picture (the naive squash)."""
    steps = reading.preprocess or {}
    box = reading.box or steps.get("ink_box") or steps.get("object_box")
    if box is None:
        return 0, 0, int(size[0]), int(size[1])
    x0, y0, x1, y1 = (int(v) for v in box)
    return x0, y0, x1, y1


def _colour(weights: np.ndarray, ink: np.ndarray) -> Image.Image:
    """Signed weights → RGBA: red for, blue against, opacity by strength (and by ink)."""
    peak = float(np.abs(weights).max())
    strength = np.abs(weights) / peak if peak > 0 else np.zeros_like(weights)
    rgba = np.zeros((*weights.shape, 4), dtype=np.uint8)
    rgba[weights > 0, :3] = FOR
    rgba[weights < 0, :3] = AGAINST
    rgba[..., 3] = np.round(MAX_ALPHA * np.sqrt(strength) * np.clip(ink / 0.5, 0, 1)).astype(np.uint8)
    return Image.fromarray(rgba, "RGBA")
