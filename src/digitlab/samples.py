"""Sample images for demos and tests, made from the test split (never shipped as files)."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from digitlab.files import atomic_path


def write_samples(
    images: torch.Tensor, labels: torch.Tensor, out_dir: Path, per_class: int = 1, scale: int = 4
) -> list[Path]:
    """Write the first `per_class` test images of each class as enlarged PNGs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for digit in sorted(set(labels.tolist())):
        for k, index in enumerate((labels == digit).nonzero().flatten()[:per_class].tolist()):
            side = images.shape[-1] * scale
            picture = Image.fromarray(images[index].numpy()).resize(
                (side, side), Image.Resampling.BICUBIC
            )
            path = out_dir / f"digit-{digit}-{k}.png"
            with atomic_path(path) as tmp:
                picture.save(tmp, format="PNG")
            written.append(path)
    return written
