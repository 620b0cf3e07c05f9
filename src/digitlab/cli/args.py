"""Flags and argument types shared by several subcommands (declared once, used everywhere).

Nothing here imports torch: building the parser must stay instant (`digitlab --help`).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from digitlab.checkpoints.shipped import is_shipped
from digitlab.devices import DEVICES

CHECKPOINT_HELP = ("a .pt from `digitlab train` or `digitlab pack`, or `default`: the model shipped "
                   "with digitlab")
MODEL_HELP = ("a .pt from `digitlab train` or `pack`, or a .onnx or TorchScript file from "
              "`digitlab export` (the backend follows the file); default: the model shipped with "
              "digitlab (also `default`)")


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


def beside_checkpoint(checkpoint: str, folder: str) -> Path:
    """`folder` next to `checkpoint`; for the shipped model (inside the installed package,
    perhaps read-only) `folder` in the current directory."""
    return Path(folder) if is_shipped(checkpoint) else Path(checkpoint).parent / folder


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


def add_real_args(parser: argparse.ArgumentParser) -> None:
    """--val-real and --select-by: `train` and `study` judge runs by them alike."""
    from digitlab.training.config import SELECT_BY

    parser.add_argument("--val-real", action="append", metavar="DIR",
                        help="a folder of real labelled digits (names start with the digit and "
                             "`_`, as `bench wild --real` reads) scored every epoch, never "
                             "trained on; repeatable: metrics.json keeps each folder's accuracy")
    parser.add_argument("--select-by", choices=SELECT_BY,
                        help="what picks best.pt (and a study's trials): test accuracy, "
                             "val(idation) accuracy, or the mean accuracy over the --val-real "
                             "folders (default: val with --val-split, else test)")


def add_device_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=DEVICES, default=None,
                        help="where to compute (default: auto = CUDA, else MPS, else CPU)")
    parser.add_argument("--no-accel", action="store_true", help="same as --device cpu")


def device_of(args: argparse.Namespace) -> str:
    return "cpu" if args.no_accel else (args.device or "auto")


def shows_progress(args: argparse.Namespace) -> bool:
    """Progress bars unless -q or --no-progress; under torchrun only rank 0 draws them."""
    return not (args.quiet or getattr(args, "no_progress", False)) and os.environ.get("RANK", "0") == "0"


def add_global_args(parser: argparse.ArgumentParser, *, after_command: bool = False) -> None:
    """-q and -v, accepted before the subcommand and after it (`digitlab classify -q x.png`).

    After the subcommand their default is SUPPRESS, so that a flag given before it is not reset
    by the subcommand's parser.
    """
    default: dict = {"default": argparse.SUPPRESS} if after_command else {}
    parser.add_argument("-q", "--quiet", action="store_true", **default,
                        help="only warnings and errors, no progress bars")
    parser.add_argument("-v", "--verbose", action="store_true", **default,
                        help="debug messages too (e.g. the loss every --log-interval batches)")


class Command:
    """Adds one subcommand: a one-line purpose, examples shown by --help, and its handler."""

    def __init__(self, sub: argparse._SubParsersAction) -> None:
        self.sub = sub
        self.common = argparse.ArgumentParser(add_help=False)
        add_global_args(self.common, after_command=True)

    def __call__(
        self, name: str, handler: Callable[[argparse.Namespace], int], purpose: str, examples: str = ""
    ) -> argparse.ArgumentParser:
        lines = examples.strip().splitlines()
        epilog = "examples:\n" + "\n".join(f"  {line}" for line in lines) if lines else None
        p = self.sub.add_parser(name, help=purpose, description=purpose, epilog=epilog,
                                parents=[self.common],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(handler=handler)
        return p
