"""Mixed precision (`digitlab train --amp`): autocast to bf16 or fp16 on CUDA, GradScaler for fp16.

The forward pass and the loss run under `torch.autocast`; the weights, the optimiser and the
evaluation stay in float32, so the accuracy a run reports compares with any other run. fp16's
narrow range needs the loss scaled up before backward (and the step skipped when a gradient
overflows): torch.amp.GradScaler does that, and its state travels in the checkpoint so a resumed
run continues with the same scale. bf16 has float32's range and needs no scaler.

On CPU `--amp` is refused: bf16 autocast made the training step of the convolutional models
4-10x slower on the CPUs this was measured on (no bf16 matrix units; benchmarks/amp_step.py,
docs/scaling-training.md), and fp16 on CPU has no fast kernels at all.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch

from digitlab.errors import ConfigError

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class MixedPrecision:
    """How the training step runs: autocast to `dtype` on `device_type`, and a loss scaler
    (fp16 only)."""

    device_type: str
    dtype: torch.dtype
    scaler: torch.amp.GradScaler | None = None

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward_and_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Backward, then the optimiser step; with a scaler, scaled (a step whose gradients
        overflowed is skipped and the scale lowered)."""
        if self.scaler is None:
            loss.backward()
            optimizer.step()
            return
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict[str, Any] | None:
        return self.scaler.state_dict() if self.scaler is not None else None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)


def mixed_precision(mode: str, device: torch.device) -> MixedPrecision | None:
    """The mixed precision `mode` ("off", "bf16", "fp16") asks for on `device`; None for "off".

    Raises ConfigError off CUDA, or for bf16 on a GPU without bf16 support.
    """
    if mode == "off":
        return None
    if mode not in _DTYPES:
        raise ConfigError(f"--amp must be bf16 or fp16 (got {mode!r})")
    if device.type != "cuda":
        raise ConfigError(f"--amp {mode} needs a CUDA GPU; on {device.type} train without --amp "
                          "(float32 is the fast path there)")
    if mode == "bf16" and not torch.cuda.is_bf16_supported():
        raise ConfigError("this GPU has no bf16 support; use --amp fp16")
    scaler = torch.amp.GradScaler(device.type) if mode == "fp16" else None
    return MixedPrecision(device.type, _DTYPES[mode], scaler)
