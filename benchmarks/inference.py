"""Batched inference speed of a model: images/s on the MNIST test set, in memory.

Times `Predictor.predict` (normalise, forward, probabilities) on the 10,000 test digits as
28×28 tensors, so decoding and preprocessing are left out; several batch sizes. With --onnx
the model is also exported to ONNX (checked against PyTorch on the 10,000 digits) and run by
onnxruntime (graph optimisation level ALL) on the same batches; --threads 2 1 compares thread
counts. Variants and batch sizes are timed alternately, --repeats rounds, each figure the
median, each ratio against the first variant within the same run, so a busy machine slows all
alike. It also says whether the answers are the same: the digit read for every image, and the
largest difference in any probability.

The Predictor folds batch norm into the convolutions, pools before ReLU and runs channels-last.
Whole commands on folders of files: benchmarks/classify_folder.py.

    python benchmarks/inference.py [--model CHECKPOINT] [--threads 2 1] [--repeats 7] [--onnx]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from digitlab import data
from digitlab.predicting.predictor import Predictor

BATCHES = (1, 64, 256, 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="checkpoint (default: the packaged model)")
    parser.add_argument("--threads", type=int, nargs="+", default=[os.cpu_count() or 1],
                        help="intra-op thread counts to compare (e.g. 1 2); the first is the baseline")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--onnx", action="store_true",
                        help="also export to ONNX (checked) and time onnxruntime beside PyTorch")
    args = parser.parse_args()

    predictor = Predictor.from_checkpoint(args.model)
    images, labels = data.load_split(data.resolve_root(args.data_dir), train=False)
    pixels = images.float() / 255
    variants: dict[str, tuple[Predictor, int]] = {f"pytorch {n}t": (predictor, n) for n in args.threads}
    if args.onnx:
        for n in args.threads:
            torch.set_num_threads(n)  # the onnxruntime session takes PyTorch's thread count
            variants[f"onnxruntime {n}t"] = (onnx_predictor(predictor, pixels), n)
    print(f"model {args.model or 'packaged default'} ({predictor.checkpoint.model_name}), "
          f"{len(pixels)} images, median of {args.repeats} (cores: {os.cpu_count()}, "
          f"load {os.getloadavg()[0]:.1f})")
    rates, outputs = time_variants(variants, pixels, args.repeats)
    baseline = next(iter(variants))
    for batch in BATCHES:
        line = [f"batch {batch:>5}:"]
        for name in variants:
            rate = statistics.median(rates[(name, batch)])
            ratio = rate / statistics.median(rates[(baseline, batch)])
            line.append(f"{name} {rate:>6.0f}/s" + (f" ({ratio:.2f}×)" if name != baseline else ""))
        print("  ".join(line))
    reference = outputs[baseline]
    for name, out in outputs.items():
        differ = int((out.argmax(1) != reference.argmax(1)).sum())
        print(f"{name}: {100 * float((out.argmax(1) == labels).float().mean()):.2f}% right; "
              f"digits differing from {baseline}: {differ}, largest probability difference "
              f"{float((out - reference).abs().max()):.1e}")


def time_variants(variants: dict[str, tuple[Predictor, int]], pixels: torch.Tensor, repeats: int,
                  ) -> tuple[dict[tuple[str, int], list[float]], dict[str, torch.Tensor]]:
    """images/s of each variant and batch size, timed alternately; the last outputs of each."""
    rates: dict[tuple[str, int], list[float]] = {}
    outputs: dict[str, torch.Tensor] = {}
    for _ in range(repeats):
        for batch in BATCHES:
            for name, (backend, threads) in variants.items():
                torch.set_num_threads(threads)
                start = time.perf_counter()
                outputs[name] = torch.cat([backend.predict(pixels[i : i + batch])
                                           for i in range(0, len(pixels), batch)])
                rates.setdefault((name, batch), []).append(len(pixels) / (time.perf_counter() - start))
    return rates, outputs


def onnx_predictor(predictor: Predictor, pixels: torch.Tensor) -> Predictor:
    from digitlab.export.exporter import export_model

    folder = tempfile.mkdtemp(prefix="inference-onnx-")
    path = Path(folder) / "model.onnx"
    model = predictor.backend.model  # batch norm already folded: the same graph PyTorch runs
    export_model(model, predictor.checkpoint, path, "onnx", pixels)
    return Predictor.load(path)


if __name__ == "__main__":
    main()
