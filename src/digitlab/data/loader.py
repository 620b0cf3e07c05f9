"""Batches from resident uint8 tensors: no Dataset, no DataLoader, no per-sample transforms.

A split is read once into uint8 tensors (47 MB for MNIST's training set), moved to the
training device, and each epoch is a seeded permutation sliced into batches; normalisation
happens per batch on the device.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from digitlab.data.normalise import normalise


class TensorLoader:
    """Iterate (images, labels) batches; images are normalised float N×1×H×W.

    The permutation of epoch `e` depends only on (seed, e), so a resumed run sees the
    same batches as an uninterrupted one. With `num_shards > 1` each shard (a distributed
    rank) gets a disjoint, equal-sized slice of every epoch's permutation.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        *,
        mean: float,
        std: float,
        shuffle: bool = False,
        seed: int = 0,
        device: torch.device | str = "cpu",
        shard: int = 0,
        num_shards: int = 1,
        augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    ) -> None:
        if images.dtype != torch.uint8:
            raise TypeError("TensorLoader expects uint8 images")
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self.batch_size = batch_size
        self.mean, self.std = mean, std
        self.shuffle = shuffle
        self.seed = seed
        self.shard, self.num_shards = shard, num_shards
        self.epoch = 0
        self.augment = augment

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _indices(self) -> torch.Tensor:
        n = len(self.images)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(n, generator=g)
        else:
            order = torch.arange(n)
        if self.num_shards > 1:
            per_shard = n // self.num_shards
            order = order[self.shard * per_shard : (self.shard + 1) * per_shard]
        return order.to(self.device)

    @property
    def num_samples(self) -> int:
        n = len(self.images)
        return n // self.num_shards if self.num_shards > 1 else n

    def __len__(self) -> int:
        return -(-self.num_samples // self.batch_size)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        return normalise(images.unsqueeze(1), self.mean, self.std, max_value=255.0)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self._indices()
        generator = None
        if self.augment is not None:
            seed = self.seed * 100_003 + self.epoch + 7 * (self.shard + 1)
            generator = torch.Generator(device=self.device).manual_seed(seed)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            if self.augment is None or generator is None:  # both or neither
                yield self.normalise(self.images[idx]), self.labels[idx]
            else:
                x = self.augment(self.images[idx].unsqueeze(1).float().div_(255), generator)
                yield normalise(x, self.mean, self.std), self.labels[idx]
