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

    def sync_batchnorm(self, model: nn.Module, device: torch.device) -> nn.Module:
        """`model` with SyncBatchNorm layers under DDP on CUDA: batch statistics over the whole
        global batch, so every rank normalises alike and keeps the same running statistics.

        PyTorch's SyncBatchNorm runs on GPUs only (on CPU it raises), so under gloo on CPU each
        process normalises by its own shard, as plain DDP does.
        """
        if not self.enabled or not any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                                       for m in model.modules()):
            return model
        if device.type != "cuda":
            logger.info("batch norm under DDP on %s: statistics per process (SyncBatchNorm needs "
                        "CUDA)", device.type)
            return model
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)

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
        store = _attempt_store(info)
        if store is None:
            dist.init_process_group(backend=backend)
        else:
            dist.init_process_group(backend=backend, store=store, rank=info.rank,
                                    world_size=world_size)
        logger.info("rank %d of %d joined (%s)", info.rank, world_size, backend)
    return info


def _attempt_store(info: Distributed) -> dist.Store | None:
    """A store of this attempt's own under a torchrun that restarts workers (None: torch's).

    torchrun hands its workers the store of its rendezvous, and keeps it across restarts; the
    keys a process group writes there (each rank's address) outlive the attempt that wrote them,
    so a restarted rank can read a dead peer's address and hang connecting to it (pytorch/pytorch
    #135712). Keys under a prefix per attempt cannot collide. The restart count is the same on
    every rank only when one torchrun agent runs them all (one node); across nodes, torch's own
    remedy is to run torchrun with TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1.
    """
    restart = os.environ.get("TORCHELASTIC_RESTART_COUNT")
    if restart is None or os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    if int(os.environ.get("LOCAL_WORLD_SIZE", info.world_size)) != info.world_size:
        if info.is_main and int(os.environ.get("TORCHELASTIC_MAX_RESTARTS", "0")) > 0:
            logger.warning("a job on several nodes may not restart cleanly: run torchrun with "
                           "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 (docs/scaling-training.md)")
        return None
    from torch.distributed.constants import default_pg_timeout

    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]),
                          info.world_size, is_master=False, timeout=default_pg_timeout)
    return dist.PrefixStore(f"digitlab/attempt-{restart}", store)


def shutdown(info: Distributed, wait_for_others: bool = True) -> None:
    """Leave the process group; after a failure without the barrier, since the other ranks may
    be waiting in a collective this rank will never join (torchrun then stops them)."""
    if info.enabled and dist.is_initialized():
        if wait_for_others:
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
