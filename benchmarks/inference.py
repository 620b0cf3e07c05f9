"""Batched CPU inference speed of a model: images/s on the MNIST test set, several batch sizes.

Times `Predictor.predict` (normalise, forward, probabilities) on in-memory 28×28 images, so file
decoding and preprocessing are left out; medians of --repeats passes over the 10,000 images.
The Predictor folds batch norm into the convolutions and runs channels-last.

    python benchmarks/inference.py [--model CHECKPOINT] [--threads 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from digitlab import data
from digitlab.inference import Predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="checkpoint (default: the packaged model)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    predictor = Predictor.from_checkpoint(args.model)
    images, labels = data.load_split(data.resolve_root(args.data_dir), train=False)
    pixels = images.float() / 255
    print(f"model {args.model or 'packaged default'} ({predictor.checkpoint.model_name}), "
          f"{args.threads} threads, {len(pixels)} images, median of {args.repeats}")
    for batch in (1, 64, 256, 1000):
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            out = torch.cat([predictor.predict(pixels[i : i + batch]) for i in range(0, len(pixels), batch)])
            times.append(time.perf_counter() - start)
        accuracy = float((out.argmax(1) == labels).float().mean())
        print(f"batch {batch:>5}: {len(pixels) / statistics.median(times):>8.0f} images/s "
              f"(accuracy {100 * accuracy:.2f}%)")


if __name__ == "__main__":
    main()
