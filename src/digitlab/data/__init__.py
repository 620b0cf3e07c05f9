"""Data sets on disk: specs and sources, IDX files, splits as tensors, batches, augmentation."""

from digitlab.data.datasets import (
    DATASETS,
    FASHION_MNIST,
    MNIST,
    MNIST_MEAN,
    MNIST_STD,
    NOT_A_DIGIT,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    DatasetSpec,
    default_root,
    describe_datasets,
    get_dataset,
    raw_dir,
    resolve_root,
)
from digitlab.data.idx import check_file, read_idx, sha256_file, verify, write_idx
from digitlab.data.splits import (
    VALIDATION_SIZE,
    compute_stats,
    load_split,
    normalisation,
    split_validation,
)

__all__ = [
    "DATASETS", "FASHION_MNIST", "MNIST", "MNIST_MEAN", "MNIST_STD", "NOT_A_DIGIT", "TEST_IMAGES",
    "TEST_LABELS",
    "TRAIN_IMAGES", "TRAIN_LABELS", "VALIDATION_SIZE", "DatasetSpec", "check_file",
    "compute_stats", "default_root", "describe_datasets", "get_dataset", "load_split",
    "normalisation", "raw_dir", "read_idx", "resolve_root", "sha256_file", "split_validation",
    "verify", "write_idx",
]
