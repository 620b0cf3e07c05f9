"""Shared fixtures: small fake IDX data sets, the real MNIST (fetched by `make setup`), a tiny run."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

from digitlab import data
from digitlab.training.config import DataConfig, TrainConfig


def make_fake_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random 28×28 'digits': a bright bar whose position encodes the label, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    images = (rng.random((n, 28, 28)) * 40).astype(np.uint8)
    for i, label in enumerate(labels):
        images[i, 4 + 2 * label : 6 + 2 * label, 4:24] = 255
    return images, labels


def write_fake_mnist(root: Path, n_train: int = 256, n_test: int = 64) -> data.DatasetSpec:
    """Write fake IDX files in torchvision's layout; return a spec with their checksums."""
    folder = data.raw_dir(root)
    train_x, train_y = make_fake_images(n_train, seed=1)
    test_x, test_y = make_fake_images(n_test, seed=2)
    arrays = {
        data.TRAIN_IMAGES: train_x, data.TRAIN_LABELS: train_y,
        data.TEST_IMAGES: test_x, data.TEST_LABELS: test_y,
    }
    for name, array in arrays.items():
        data.write_idx(folder / name, array)
    checksums = {name: data.sha256_file(folder / name) for name in arrays}
    return dataclasses.replace(data.MNIST, files=checksums)


@pytest.fixture
def fake_mnist(tmp_path: Path) -> tuple[Path, data.DatasetSpec]:
    root = tmp_path / "data"
    return root, write_fake_mnist(root)


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """The real, verified MNIST (`make setup` fetches it)."""
    root = data.default_root()
    problems = {k: v for k, v in data.verify(root).items() if v}
    if problems:
        reason = f"needs the real MNIST, not available in {root} ({problems}); run `make setup`"
        if os.environ.get("DIGITLAB_REQUIRE_MNIST"):  # `make test` fetched it: a skip would hide a fault
            pytest.fail(reason)
        pytest.skip(reason)
    return root


@pytest.fixture(scope="session")
def tiny_run(mnist_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real, short training run (mlp, 3000 images, 2 epochs) shared by read-only tests."""
    from digitlab.training.trainer import train

    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    config = TrainConfig(recipe="tutorial-mlp", model="mlp", epochs=2, progress=False,
                         device="cpu")
    train(config, DataConfig(root=mnist_root, train_limit=3000, test_limit=2000), run_dir)
    return run_dir
