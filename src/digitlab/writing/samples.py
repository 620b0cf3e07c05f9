"""Sample images for the demo and tests, made from the test split (never shipped as files)."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from PIL import Image

from digitlab.data import MNIST, DatasetSpec
from digitlab.files import atomic_path, output_dir

SAMPLE_CONDITIONS = ("paper", "canvas", "photo")  # how users hand us digits (see digitlab.writing.wild)
PRODUCT_CONDITIONS = ("catalogue", "raw")  # objects: dark on a white backdrop, or as stored
CATALOGUE_SCALE, CATALOGUE_MARGIN = 8, 24  # 224×224 object on a 272×272 white backdrop


def write_samples(
    images: torch.Tensor, labels: torch.Tensor, out_dir: Path, per_class: int = 1, seed: int = 0,
    spec: DatasetSpec = MNIST,
) -> list[Path]:
    """Write test images the way users produce them: for each condition, the first
    `per_class` test images of each class, named `<condition>-<kind>-<class>-<k>.png`.

    Digits are re-drawn on paper, a canvas and in a photo (digitlab.writing.wild); other data sets'
    images are written as a product photo (dark on white, enlarged) and as stored (28×28).
    """
    picked = torch.cat([(labels == c).nonzero().flatten()[:per_class] for c in range(len(spec.classes))])
    with output_dir(out_dir):
        if not spec.digits:
            return _write_pictures(images[picked], labels[picked], out_dir, spec)
        from digitlab.writing.wild import render_condition

        written = []
        for condition in SAMPLE_CONDITIONS:
            samples = render_condition(condition, images[picked], labels[picked], len(picked), seed)
            for k, sample in enumerate(samples):
                written.append(_save(sample.image, out_dir / f"{condition}-digit-{sample.label}-{k:02d}.png"))
        return written


def _write_pictures(images: torch.Tensor, labels: torch.Tensor, out_dir: Path,
                    spec: DatasetSpec) -> list[Path]:
    written = []
    for k, (pixels, label) in enumerate(zip(images.numpy(), labels.tolist(), strict=True)):
        slug = re.sub(r"[^a-z0-9]+", "-", spec.classes[label].lower()).strip("-") or str(label)
        big = Image.fromarray(255 - pixels).resize(
            (28 * CATALOGUE_SCALE,) * 2, Image.Resampling.BICUBIC)
        catalogue = Image.new("L", (28 * CATALOGUE_SCALE + 2 * CATALOGUE_MARGIN,) * 2, 255)
        catalogue.paste(big, (CATALOGUE_MARGIN, CATALOGUE_MARGIN))
        for condition, picture in zip(PRODUCT_CONDITIONS, (catalogue, Image.fromarray(pixels)),
                                      strict=True):
            written.append(_save(picture, out_dir / f"{condition}-{slug}-{k:02d}.png"))
    return written


def _save(image: Image.Image, path: Path) -> Path:
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path
