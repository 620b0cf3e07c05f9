"""Which device torch runs on: one choice for training, evaluation, reports and reading."""

from __future__ import annotations

from typing import TYPE_CHECKING

from digitlab.errors import ConfigError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda", "mps")  # what --device accepts


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA, then MPS, then CPU; an explicit name must be available."""
    import torch  # here, not above: the CLI imports DEVICES for --help, which needs no torch

    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (name == "cuda" and not cuda) or (name == "mps" and not mps):
        raise ConfigError(f"--device {name} was asked for but is not available; use --device cpu")
    return torch.device(name)


def cpu_has_bf16() -> bool:
    """Whether this CPU has bfloat16 instructions (AVX512-BF16 or AMX-BF16): where bf16
    autocast is faster than float32. Without them oneDNN emulates bf16, several times slower."""
    import torch

    try:
        flags = torch._C._cpu._get_cpu_capability()  # torch's own cpuinfo reading
    except (AttributeError, RuntimeError):
        return _cpuinfo_has_bf16()
    return bool(flags.get("avx512_bf16") or flags.get("amx_bf16"))


def _cpuinfo_has_bf16() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            words = set(f.read().split())
    except OSError:
        return False
    return bool(words & {"avx512_bf16", "amx_bf16"})
