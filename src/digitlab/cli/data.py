"""`digitlab data`: fetch, verify and describe a data set; write sample images."""

from __future__ import annotations

import argparse
from pathlib import Path

from digitlab.cli.args import Command, add_data_args, add_dataset_arg, positive_int
from digitlab.data.datasets import DatasetSpec


def register(command: Command) -> None:
    p = command("data", cmd_data, "fetch, verify or describe a data set, or write sample images", """
digitlab data fetch                            # MNIST into ~/.cache/digitlab, checked by sha256
digitlab data verify --dataset fashion-mnist
digitlab data samples --out samples --per-class 2
""")
    p.add_argument("action", choices=("fetch", "verify", "info", "stats", "samples"))
    add_dataset_arg(p)
    p.add_argument("--out", default="samples", help="samples: output folder")
    p.add_argument("--per-class", type=positive_int, default=1,
                   help="samples: images per class and condition")
    add_data_args(p)


def cmd_data(args: argparse.Namespace) -> int:
    from digitlab import data
    from digitlab.data.fetch import fetch

    root, spec = data.resolve_root(args.data_dir), data.get_dataset(args.dataset)
    if args.action == "fetch":
        print(f"{spec.name} ready in {fetch(root, spec)}")
        return 0
    if args.action in ("verify", "info"):
        return show_files(root, spec, info=args.action == "info")
    if args.action == "stats":
        mean, std = data.compute_stats(data.load_split(root, True, spec)[0])
        print(f"{spec.name} training set: mean {mean:.4f}, std {std:.4f}")
        return 0
    from digitlab.writing.samples import write_samples

    images, labels = data.load_split(root, False, spec)
    paths = write_samples(images, labels, Path(args.out), per_class=args.per_class, spec=spec)
    print(f"wrote {len(paths)} sample images to {args.out}")
    return 0


def show_files(root: Path, spec: DatasetSpec, info: bool) -> int:
    """Print each raw file's size and state (and, for info, the splits' shapes); 1 if any is bad."""
    from digitlab import data

    problems = data.verify(root, spec)
    print(f"{spec.name}: {data.raw_dir(root, spec)}")
    for name, problem in problems.items():
        path = data.raw_dir(root, spec) / name
        size = f"{path.stat().st_size:>10,d} bytes" if path.is_file() else " " * 16
        good = "ok (sha256 verified)" if spec.files[name] else "ok (IDX structure; no sha256 pinned)"
        print(f"  {name:<26} {size}  {problem or good}")
    if info and not any(problems.values()):
        for train in (True, False):
            images, _ = data.load_split(root, train, spec)
            print(f"  {'train' if train else 'test'}: {len(images)} images "
                  f"of {images.shape[1]}×{images.shape[2]}")
    return 1 if any(problems.values()) else 0
