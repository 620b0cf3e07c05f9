"""Training-time augmentation on whole batches, on the training device.

Works on float images in [0, 1] (N×1×H×W), before normalisation: a random affine warp per
sample (rotation, scale, shift, shear) plus optional elastic distortion in one `grid_sample`,
then stroke-width jitter by blending towards a dilated or eroded copy. No per-sample loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    rotation: float = 15.0  # degrees, ±
    scale: tuple[float, float] = (0.8, 1.15)
    shift: float = 0.1  # fraction of the image side, ±
    shear: float = 0.25  # radians-ish, ±
    stroke: float = 0.8  # max blend towards dilation/erosion (0 = off)
    elastic: float = 0.0  # displacement in pixels (0 = off)
    probability: float = 0.9  # share of samples that are transformed at all


def _uniform(n: int, low: float, high: float, device: torch.device, g: torch.Generator | None):
    return torch.rand(n, device=device, generator=g) * (high - low) + low


def _identity_grid(h: int, w: int, device: torch.device) -> torch.Tensor:
    """Homogeneous pixel-centre coordinates in [-1, 1], (H*W)×3, as affine_grid uses."""
    ys = (torch.arange(h, device=device) * 2 + 1) / h - 1
    xs = (torch.arange(w, device=device) * 2 + 1) / w - 1
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx.flatten(), yy.flatten(), torch.ones(h * w, device=device)], dim=1)


def random_theta(n: int, cfg: AugmentConfig, device: torch.device, g: torch.Generator | None):
    """N×2×3 affine matrices mapping output to input coordinates (affine_grid's convention)."""
    angle = _uniform(n, -cfg.rotation, cfg.rotation, device, g) * math.pi / 180
    scale = _uniform(n, *cfg.scale, device, g)
    shear = _uniform(n, -cfg.shear, cfg.shear, device, g)
    tx, ty = (_uniform(n, -2 * cfg.shift, 2 * cfg.shift, device, g) for _ in range(2))
    cos, sin = torch.cos(angle), torch.sin(angle)
    # rotation @ shear, divided by the scale so that scale > 1 makes the digit larger
    linear = torch.stack([
        torch.stack([cos, shear * cos - sin], dim=1),
        torch.stack([sin, shear * sin + cos], dim=1),
    ], dim=1) / scale.view(n, 1, 1)
    return torch.cat([linear, torch.stack([tx, ty], dim=1).unsqueeze(2)], dim=2)


def warp(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator | None = None) -> torch.Tensor:
    """Random affine plus optional elastic displacement, resampled in one grid_sample."""
    n, _, h, w = x.shape
    theta = random_theta(n, cfg, x.device, g)
    grid = torch.matmul(_identity_grid(h, w, x.device), theta.transpose(1, 2)).view(n, h, w, 2)
    if cfg.elastic > 0:
        coarse = torch.rand(n, 2, 4, 4, device=x.device, generator=g) * 2 - 1
        field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
        scale = torch.tensor([2 * cfg.elastic / w, 2 * cfg.elastic / h], device=x.device)
        grid = grid + field.permute(0, 2, 3, 1) * scale
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def stroke_jitter(x: torch.Tensor, strength: float, g: torch.Generator | None = None):
    """Blend each image towards its 3×3 dilation (thicker) or erosion (thinner)."""
    n = x.shape[0]
    amount = _uniform(n, -strength, strength, x.device, g).view(n, 1, 1, 1)
    thicker = F.max_pool2d(x, 3, stride=1, padding=1)
    thinner = -F.max_pool2d(-x, 3, stride=1, padding=1)
    # Full erosion wipes out MNIST's thinnest strokes, so thinning goes only half as far.
    target = torch.where(amount > 0, thicker, thinner)
    return torch.lerp(x, target, torch.where(amount > 0, amount, -0.5 * amount))


class Augment:
    """Batch transform `augment(images01, generator) -> images01`, same shape.

    The loader passes a generator seeded per epoch, so a resumed run augments identically.
    """

    def __init__(self, cfg: AugmentConfig | None = None) -> None:
        self.cfg = cfg or AugmentConfig()

    def __call__(self, x: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
        cfg = self.cfg
        out = warp(x, cfg, g)
        if cfg.stroke > 0:
            out = stroke_jitter(out, cfg.stroke, g)
        keep = torch.rand(x.shape[0], device=x.device, generator=g) >= cfg.probability
        return torch.where(keep.view(-1, 1, 1, 1), x, out.clamp_(0, 1))
