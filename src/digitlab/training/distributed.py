"""Multi-process training under torchrun: process group, rank roles, and checks.

`torchrun --nproc-per-node N -m digitlab train ...` starts N copies of the normal command;
torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) tells each
which it is. Without it everything here is a no-op for a single process (rank 0 of 1).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Distributed:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes metrics, checkpoints and plots."""
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """One GPU per process on CUDA (cuda:LOCAL_RANK); the CPU is shared."""
        if self.enabled and device.type == "cuda":
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return device

    def wrap(self, model: nn.Module) -> nn.Module:
        """DistributedDataParallel around `model` (its gradients all-reduced), or `model`."""
        if not self.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.local_rank] if next(model.parameters()).is_cuda else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def broadcast(self, value: Any) -> Any:
        """Rank 0's `value` on every rank (e.g. the run folder, named from the clock)."""
        if not self.enabled:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value: Any) -> list[Any]:
        """Every rank's `value`, in rank order, on every rank."""
        if not self.enabled:
            return [value]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, value)
        return out

    def mean(self, value: float) -> float:
        """The average of `value` over the ranks."""
        if not self.enabled:
            return value
        return sum(self.gather(value)) / self.world_size


def from_environment(device: torch.device) -> Distributed:
    """Join torchrun's process group if there is one (gloo on CPU, nccl on CUDA)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    info = Distributed(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend=backend)
        logger.info("rank %d of %d joined (%s)", info.rank, world_size, backend)
    return info


def shutdown(info: Distributed) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def weights_checksum(model: nn.Module) -> float:
    """A fingerprint of the parameters and buffers: equal weights, equal fingerprints."""
    total = 0.0
    with torch.no_grad():
        for i, tensor in enumerate(model.state_dict().values()):
            if tensor.is_floating_point():
                flat = tensor.detach().double().flatten().cpu()
                total += float((flat * torch.arange(1, len(flat) + 1, dtype=torch.float64)).sum()) * (i + 1)
    return total
