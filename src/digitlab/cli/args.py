"""Flags and argument types shared by several subcommands (declared once, used everywhere).

Nothing here imports torch: building the parser must stay instant (`digitlab --help`).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from digitlab.devices import DEVICES


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {value})")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more (got {value})")
    return value


def probability(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (got {value})")
    return value


def add_data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", metavar="DIR",
        help="data root (default: $DIGITLAB_DATA, else the user cache folder, ~/.cache/digitlab)",
    )


def add_dataset_arg(parser: argparse.ArgumentParser) -> None:
    from digitlab.data.datasets import DATASETS, describe_datasets

    parser.add_argument("--dataset", default="mnist", choices=tuple(DATASETS), metavar="NAME",
                        help=f"data set (default: mnist): {describe_datasets()}")


def add_limit_args(parser: argparse.ArgumentParser, train: bool = True) -> None:
    if train:
        parser.add_argument("--train-limit", type=positive_int, metavar="N",
                            help="train on the first N images only")
    parser.add_argument("--test-limit", type=positive_int, metavar="N",
                        help="test on the first N images only")


def add_device_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=DEVICES, default=None,
                        help="where to compute (default: auto = CUDA, else MPS, else CPU)")
    parser.add_argument("--no-accel", action="store_true", help="same as --device cpu")


def device_of(args: argparse.Namespace) -> str:
    return "cpu" if args.no_accel else (args.device or "auto")


def shows_progress(args: argparse.Namespace) -> bool:
    """Progress bars unless -q or --no-progress; under torchrun only rank 0 draws them."""
    return not (args.quiet or getattr(args, "no_progress", False)) and os.environ.get("RANK", "0") == "0"


class Command:
    """Adds one subcommand: a one-line purpose, examples shown by --help, and its handler."""

    def __init__(self, sub: argparse._SubParsersAction) -> None:
        self.sub = sub

    def __call__(
        self, name: str, handler: Callable[[argparse.Namespace], int], purpose: str, examples: str = ""
    ) -> argparse.ArgumentParser:
        lines = examples.strip().splitlines()
        epilog = "examples:\n" + "\n".join(f"  {line}" for line in lines) if lines else None
        p = self.sub.add_parser(name, help=purpose, description=purpose, epilog=epilog,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(handler=handler)
        return p
