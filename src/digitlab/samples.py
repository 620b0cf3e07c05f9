"""Sample images for the demo and tests, made from the test split (never shipped as files)."""

from __future__ import annotations

from pathlib import Path

import torch

from digitlab.files import atomic_path

SAMPLE_CONDITIONS = ("paper", "canvas", "photo")  # how users hand us digits (see digitlab.wild)


def write_samples(
    images: torch.Tensor, labels: torch.Tensor, out_dir: Path, per_class: int = 1, seed: int = 0
) -> list[Path]:
    """Write test digits re-drawn the way users produce them: for each condition, the first
    `per_class` test images of each class, named `<condition>-digit-<label>-<k>.png`."""
    from digitlab.wild import render_condition

    out_dir.mkdir(parents=True, exist_ok=True)
    picked = torch.cat([(labels == d).nonzero().flatten()[:per_class] for d in range(10)])
    written = []
    for condition in SAMPLE_CONDITIONS:
        samples = render_condition(condition, images[picked], labels[picked], len(picked), seed)
        for k, sample in enumerate(samples):
            path = out_dir / f"{condition}-digit-{sample.label}-{k:02d}.png"
            with atomic_path(path) as tmp:
                sample.image.save(tmp, format="PNG")
            written.append(path)
    return written
