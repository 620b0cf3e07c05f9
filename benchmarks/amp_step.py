"""Training step time in float32 against mixed precision (autocast), per model: what `--amp` buys.

One step is what `train_one_epoch` does per batch: forward and loss under autocast (or not),
backward, optimiser step (through digitlab.training.precision.MixedPrecision, with a GradScaler
for fp16). Random inputs of the MNIST shape; the best of --repeats passes of --steps steps.
On CPU it times bf16 autocast, which is why `digitlab train --amp` is refused there
(docs/scaling-training.md); on CUDA, bf16 and fp16.

    python benchmarks/amp_step.py [--device cpu|cuda] [--threads N] [--steps 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from digitlab.models import create_model
from digitlab.training.engine import train_one_epoch
from digitlab.training.precision import MixedPrecision

CASES = (("fastcnn", 256, {}), ("bncnn", 128, {"widths": [24, 48, 96]}), ("cnn", 64, {}),
         ("mlp", 64, {}))  # the recipes' models, arguments and batch sizes


def step_seconds(name: str, batch: int, args: dict, device: torch.device,
                 precision: MixedPrecision | None, steps: int, repeats: int) -> float:
    torch.manual_seed(0)
    model = create_model(name, **args).to(device)
    if name != "mlp":
        model.to(memory_format=torch.channels_last)  # as the recipes train them
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    batches = [(torch.randn(batch, 1, 28, 28, device=device),
                torch.randint(0, 10, (batch,), device=device))] * steps
    train_one_epoch(model, batches[:2], optimizer, progress=False, precision=precision)  # warm up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        # the epoch's end reads the loss back: device work is inside the timing
        train_one_epoch(model, batches, optimizer, progress=False, precision=precision,
                        log_interval=steps)
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    modes = {"bf16": torch.bfloat16} if device.type == "cpu" else {
        "bf16": torch.bfloat16, "fp16": torch.float16}
    print(f"device {device}, {args.threads} thread(s); ms per training step, best of {args.repeats}")
    for name, batch, model_args in CASES:
        base = step_seconds(name, batch, model_args, device, None, args.steps, args.repeats)
        row = [f"{name:8s} batch {batch:4d}: float32 {1000 * base:8.1f}"]
        for mode, dtype in modes.items():
            scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
            precision = MixedPrecision(device.type, dtype, scaler)
            seconds = step_seconds(name, batch, model_args, device, precision, args.steps,
                                   args.repeats)
            row.append(f"{mode} {1000 * seconds:8.1f} ({base / seconds:.2f}x speed)")
        print(", ".join(row))


if __name__ == "__main__":
    main()
