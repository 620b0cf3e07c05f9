"""Mixed precision (`digitlab train --amp`): bf16 autocast on CUDA and on CPUs with bfloat16
instructions, fp16 with a GradScaler on CUDA.

The forward pass and the loss run under `torch.autocast`; the weights, the optimiser and the
evaluation stay in float32, so the accuracy a run reports compares with any other run. fp16's
narrow range needs the loss scaled up before backward (and the step skipped when a gradient
overflows): torch.amp.GradScaler does that, and its state travels in the checkpoint so a resumed
run continues with the same scale. bf16 has float32's range and needs no scaler.

On the CPU, bf16 pays only where the CPU has bfloat16 instructions (AVX512-BF16 or AMX,
`devices.cpu_has_bf16`): there oneDNN runs the convolutions in bf16 (1.4-1.7x faster training
steps on the AMD EPYC digitlab is developed on, benchmarks/amp_step.py); without them it
emulates bf16 and was 4-10x slower than float32, so `--amp` is refused there in one line.
fp16 has no fast CPU kernels and is refused on the CPU. `auto` is bf16 wherever it is fast
(a CUDA GPU with bf16, a CPU with bf16 instructions) and float32 elsewhere.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch

from digitlab.devices import cpu_has_bf16
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
    """The mixed precision `mode` ("off", "auto", "bf16", "fp16") asks for on `device`; None
    for float32.

    Raises ConfigError for a mode the device cannot run fast: fp16 off CUDA, bf16 on a GPU
    without bf16 or a CPU without bfloat16 instructions, anything on MPS.
    """
    if mode == "off":
        return None
    if mode not in (*_DTYPES, "auto"):
        raise ConfigError(f"--amp must be off, auto, bf16 or fp16 (got {mode!r})")
    if mode == "auto":
        return _automatic(device)
    if device.type == "cpu":
        if mode == "fp16":
            raise ConfigError("--amp fp16 needs a CUDA GPU; on the CPU use --amp bf16 (where the "
                              "CPU has bfloat16 instructions) or train without --amp")
        if not cpu_has_bf16():
            raise ConfigError("--amp bf16 needs bfloat16 instructions (AVX512-BF16 or AMX) on the "
                              "CPU, and this CPU has none: train without --amp (float32 is the "
                              "fast path here)")
        return MixedPrecision("cpu", torch.bfloat16)
    if device.type != "cuda":
        raise ConfigError(f"--amp {mode} runs on CUDA or the CPU; on {device.type} train without "
                          "--amp")
    if mode == "bf16" and not torch.cuda.is_bf16_supported():
        raise ConfigError("this GPU has no bf16 support; use --amp fp16")
    scaler = torch.amp.GradScaler(device.type) if mode == "fp16" else None
    return MixedPrecision(device.type, _DTYPES[mode], scaler)


def _automatic(device: torch.device) -> MixedPrecision | None:
    """bf16 where it is fast, else float32."""
    if device.type == "cpu" and cpu_has_bf16():
        return MixedPrecision("cpu", torch.bfloat16)
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return MixedPrecision("cuda", torch.bfloat16)
    return None
