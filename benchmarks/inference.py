"""Batched CPU inference speed of a model: images/s on the MNIST test set, several batch sizes.

Times `Predictor.predict` (normalise, forward, probabilities) on in-memory 28×28 images, so file
decoding and preprocessing are left out; medians of --repeats passes over the 10,000 images.
The Predictor folds batch norm into the convolutions, pools before ReLU and runs channels-last.

With --onnx the model is also exported to ONNX (checked against PyTorch on the 10,000
digits) and timed in onnxruntime, same batches, side by side.

Then (unless --folder 0) the whole command a user runs: the test digits written as PNG files
into one folder, and `digitlab classify FOLDER --json` timed from start to exit (Python and
torch start-up, model load, reading, preprocessing, classifying, printing), median of 3.

    python benchmarks/inference.py [--model CHECKPOINT] [--threads 2] [--repeats 5] [--folder N] [--onnx]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from digitlab import data
from digitlab.reading.predictor import Predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="checkpoint (default: the packaged model)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--folder", type=int, default=10_000, help="PNG files to classify (0: skip)")
    parser.add_argument("--onnx", action="store_true",
                        help="also export to ONNX (checked) and time onnxruntime beside PyTorch")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    predictor = Predictor.from_checkpoint(args.model)
    images, labels = data.load_split(data.resolve_root(args.data_dir), train=False)
    pixels = images.float() / 255
    backends = {"pytorch": predictor}
    if args.onnx:
        backends["onnxruntime"] = onnx_predictor(predictor, pixels)
    print(f"model {args.model or 'packaged default'} ({predictor.checkpoint.model_name}), "
          f"{args.threads} threads, {len(pixels)} images, median of {args.repeats}")
    for batch in (1, 64, 256, 1000):
        line = [f"batch {batch:>5}:"]
        for name, backend in backends.items():
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                out = torch.cat([backend.predict(pixels[i : i + batch])
                                 for i in range(0, len(pixels), batch)])
                times.append(time.perf_counter() - start)
            accuracy = float((out.argmax(1) == labels).float().mean())
            line.append(f"{name} {len(pixels) / statistics.median(times):>7.0f} images/s "
                        f"({100 * accuracy:.2f}%)")
        print("  ".join(line))
    if args.folder:
        classify_folder(images[: args.folder], labels[: args.folder], args.model)


def onnx_predictor(predictor: Predictor, pixels: torch.Tensor):
    from digitlab.export.exporter import export_model

    folder = tempfile.mkdtemp(prefix="inference-onnx-")
    path = Path(folder) / "model.onnx"
    model = predictor.backend.model  # batch norm already folded: the same graph PyTorch runs
    export_model(model, predictor.checkpoint, path, "onnx", pixels)
    return Predictor.load(path)


def classify_folder(images: torch.Tensor, labels: torch.Tensor, model: str | None) -> None:
    import json

    with tempfile.TemporaryDirectory(prefix="classify-folder-") as tmp:
        for i, image in enumerate(images):
            Image.fromarray(image.numpy()).save(Path(tmp) / f"{i:05d}.png")
        command = [sys.executable, "-m", "digitlab", "classify", tmp, "--json"]
        if model:
            command += ["--model", model]
        times, output = [], ""
        for _ in range(3):
            start = time.perf_counter()
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            times.append(time.perf_counter() - start)
    results = json.loads(output)
    right = sum(r.get("label") == str(int(y)) for r, y in zip(results, labels, strict=True))
    seconds = statistics.median(times)
    print(f"digitlab classify on a folder of {len(images)} PNGs, whole command: {seconds:.2f} s, "
          f"{len(images) / seconds:.0f} images/s ({100 * right / len(images):.2f}% right, "
          f"no digit counted wrong)")


if __name__ == "__main__":
    main()
