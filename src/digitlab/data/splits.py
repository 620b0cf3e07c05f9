"""A data set's splits as tensors: verified, read, limited, the validation split held out of
the training split, and their normalisation.

torch is imported by the functions that make tensors, not by this module: the command line
reads the data set names through `digitlab.data` and must start without it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from digitlab.data.datasets import (
    MNIST,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    DatasetSpec,
    default_root,
    raw_dir,
)
from digitlab.data.idx import check_file, read_idx
from digitlab.errors import ConfigError, DataError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

# The validation split: the last VALIDATION_SIZE images of the training split (MNIST's
# 55,000-59,999). `digitlab train --val-split` holds them out to pick best.pt; `digitlab report`
# and `pack --calibrate` fit the temperature on them.
VALIDATION_SIZE = 5000


def load_split(
    root: Path, train: bool, spec: DatasetSpec = MNIST, limit: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Verify and read one split: (uint8 images N×H×W, int64 labels N)."""
    import numpy as np
    import torch

    folder = raw_dir(root, spec)
    names = (TRAIN_IMAGES, TRAIN_LABELS) if train else (TEST_IMAGES, TEST_LABELS)
    for name in names:
        problem = check_file(folder / name, spec.files[name])
        if problem == "missing":
            raise DataError(
                f"{spec.name} file {folder / name} is missing; run `digitlab data fetch`"
                + (f" --dataset {spec.name}" if spec.name != MNIST.name else "")
                + (f" --data-dir {root}" if root != default_root() else "")
            )
        if problem:
            raise DataError(
                f"{folder / name} is {problem}; delete it and run `digitlab data fetch`"
            )
    images = torch.from_numpy(read_idx(folder / names[0]).copy())
    labels = torch.from_numpy(read_idx(folder / names[1]).astype(np.int64))
    if len(images) != len(labels):
        raise DataError(f"{folder}: {len(images)} images but {len(labels)} labels")
    if len(labels) and int(labels.max()) >= len(spec.classes):
        raise DataError(f"{folder / names[1]} has label {int(labels.max())}, but {spec.name} "
                        f"has {len(spec.classes)} classes")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images, labels


def compute_stats(images: torch.Tensor) -> tuple[float, float]:
    """Mean and standard deviation of uint8 images scaled to [0, 1]."""
    x = images.double().div_(255)
    return x.mean().item(), x.std().item()


def normalisation(spec: DatasetSpec, train_images: torch.Tensor) -> tuple[float, float]:
    """The spec's mean and std, or, where it pins none, those of `train_images`."""
    if spec.mean is not None and spec.std is not None:
        return spec.mean, spec.std
    mean, std = compute_stats(train_images)
    logger.info("%s: normalising with the training split's mean %.4f, std %.4f", spec.name, mean, std)
    return mean, std


def split_validation(images: torch.Tensor, labels: torch.Tensor, size: int) -> tuple[
        torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
    """Hold out the last `size` images: (train images, train labels, (validation images,
    validation labels) or None when `size` is 0)."""
    if not size:
        return images, labels, None
    if size >= len(images):
        raise ConfigError(f"--val-split {size} leaves nothing to train on: the training split has "
                          f"{len(images)} images; hold out fewer ({VALIDATION_SIZE} is usual for "
                          "MNIST)")
    cut = len(images) - size
    return images[:cut], labels[:cut], (images[cut:], labels[cut:])
