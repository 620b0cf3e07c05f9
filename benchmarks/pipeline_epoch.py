"""One epoch of the tutorial `cnn`: our resident-tensor pipeline vs torchvision Dataset + DataLoader.

Both paths train the same model (same seed, Adadelta lr 1.0, batch 64) in the same process,
one after the other, repeated `--repeats` times in alternating order; the medians are reported.
The DataLoader path is the tutorial's: `datasets.MNIST(transform=Compose([ToTensor(),
Normalize((0.1307,), (0.3081,))]))`, num_workers 0 and no shuffling on CPU, as its script does.
A data-only pass (iterate, no model) isolates the pipelines' own cost.

    python benchmarks/pipeline_epoch.py                 # full epoch (60,000 images) each way
    python benchmarks/pipeline_epoch.py --limit 12800   # first 12,800 images: quicker
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

from digitlab.data import MNIST_MEAN, MNIST_STD, default_root, load_split
from digitlab.data.loader import TensorLoader
from digitlab.models import create_model
from digitlab.training.engine import train_one_epoch


def tutorial_loader(root, limit: int | None, batch_size: int) -> DataLoader:
    transform = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))]
    )
    dataset = datasets.MNIST(str(root), train=True, download=False, transform=transform)
    if limit:
        dataset = Subset(dataset, range(limit))
    return DataLoader(dataset, batch_size=batch_size)


def time_epoch(batches, label: str) -> float:
    torch.manual_seed(1)
    model = create_model("cnn")
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    stats = train_one_epoch(model, batches, optimizer, progress=False, description=label)
    return stats.seconds


def time_data_only(batches) -> float:
    start = time.perf_counter()
    for images, _labels in batches:
        F.relu(images[:1])  # touch the batch
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--limit", type=int, default=None, help="first N training images")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    root = args.data_dir or default_root()

    images, labels = load_split(root, train=True, limit=args.limit)
    n = len(images)
    ours = TensorLoader(images, labels, args.batch_size, mean=MNIST_MEAN, std=MNIST_STD,
                        shuffle=True, seed=1)
    theirs = tutorial_loader(root, args.limit, args.batch_size)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {n} images, "
          f"batch {args.batch_size}, {args.repeats} repeats (medians)")

    results: dict[str, list[float]] = {k: [] for k in ("ours", "dataloader", "ours data",
                                                       "dataloader data")}
    for r in range(args.repeats):
        order = [("ours", ours), ("dataloader", theirs)]
        for name, batches in order if r % 2 == 0 else order[::-1]:
            results[f"{name} data"].append(time_data_only(batches))
            results[name].append(time_epoch(batches, name))
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"{'pipeline':<28}{'seconds':>10}{'images/s':>12}")
    for key, title in (("dataloader", "DataLoader + cnn epoch"), ("ours", "digitlab + cnn epoch"),
                       ("dataloader data", "DataLoader, data only"),
                       ("ours data", "digitlab, data only")):
        print(f"{title:<28}{med[key]:>10.2f}{n / med[key]:>12.0f}")
    print(f"epoch speed-up (DataLoader time / ours): {med['dataloader'] / med['ours']:.2f}x")
    print(f"data-only speed-up: {med['dataloader data'] / med['ours data']:.1f}x")


if __name__ == "__main__":
    main()
