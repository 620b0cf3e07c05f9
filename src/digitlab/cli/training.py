"""`digitlab train`: train a model into a run folder (or continue one)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from digitlab.cli.args import (
    Command,
    add_data_args,
    add_dataset_arg,
    add_device_args,
    add_limit_args,
    add_real_args,
    device_of,
    non_negative_int,
    shows_progress,
)
from digitlab.data.splits import VALIDATION_SIZE
from digitlab.errors import DigitlabError
from digitlab.models import list_models
from digitlab.training.config import (
    AMP_MODES,
    LOSS_ALIASES,
    LOSSES,
    OPTIMIZERS,
    DataConfig,
    TrainConfig,
)
from digitlab.training.recipes import LINE_RECIPES, RECIPES

if TYPE_CHECKING:
    from digitlab.training.runs import RunRecord

# Flags that override the recipe's value when given (None: keep the recipe's)
TRAIN_OVERRIDES = ("model", "batch_size", "test_batch_size", "epochs", "lr", "gamma", "seed",
                   "log_interval", "optimizer", "weight_decay", "loss", "amp")
DATA_OVERRIDES = ("dataset", "train_limit", "test_limit", "val_split", "val_real", "select_by")


def register(command: Command) -> None:
    p = command("train", cmd_train, "train a model and write a run folder (config, metrics, "
                "checkpoints, plot)", """
digitlab train --recipe fast --out runs/fast           # 99.2%+ in well under a minute on a CPU
digitlab train --epochs 14 --save-model                # the tutorial's full run
digitlab train --recipe robust --val-split             # hold out the last 5,000 to pick best.pt
digitlab train --recipe fast --val-real my-digits/ --select-by real   # judged by real digits
digitlab train --resume runs/fast                      # continue after an interruption
digitlab train --resume runs/cnn --epochs 20           # train it further, to 20 epochs in all
digitlab train --recipe robust --amp --tensorboard     # bf16 (GPU, or a CPU with AVX512-BF16); TensorBoard
torchrun --standalone --nproc-per-node 2 --max-restarts 3 -m digitlab train --out runs/ddp
""")
    add_train_args(p)
    add_dataset_arg(p)
    add_data_args(p)
    add_device_args(p)
    # None: not given (so --resume can tell a flag from a default); configured() fills them in
    p.set_defaults(recipe=None, dataset=None, val_split=None)


def add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recipe", default="tutorial", choices=(*RECIPES, *LINE_RECIPES),
                   help="starting settings (default: tutorial; the README's table describes each); "
                        "numbers trains the line reader that reads whole numbers")
    p.add_argument("--model", choices=list_models(), help="model (default: the recipe's)")
    p.add_argument("--batch-size", type=int, metavar="N", help="training batch (tutorial: 64)")
    p.add_argument("--test-batch-size", type=int, metavar="N", help="test batch (tutorial: 1000)")
    p.add_argument("--epochs", type=int, metavar="N", help="epochs (tutorial: 14)")
    p.add_argument("--lr", type=float, help="learning rate (tutorial: 1.0)")
    p.add_argument("--gamma", type=float, help="StepLR decay per epoch (tutorial: 0.7)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, help="optimiser (tutorial: adadelta)")
    p.add_argument("--weight-decay", type=float, help="weight decay (tutorial: 0)")
    p.add_argument("--loss", choices=(*LOSSES, *LOSS_ALIASES),
                   help="training loss: nll = cross-entropy (tutorial), or mse of the softmax "
                        "against one-hot targets")
    p.add_argument("--seed", type=int, help="random seed (tutorial: 1)")
    p.add_argument("--log-interval", type=int, metavar="N", help="batches between loss logs (10)")
    p.add_argument("--dry-run", action="store_true", help="one batch, one epoch: a smoke test")
    p.add_argument("--save-model", action="store_true",
                   help="also write mnist_cnn.pt, a bare state_dict as the tutorial saves")
    p.add_argument("--out", metavar="DIR",
                   help="run folder (default: runs/<recipe>-<time>); one with a last.pt is "
                        "continued when its settings match (else refused), e.g. after torchrun "
                        "restarts the job")
    p.add_argument("--resume", metavar="RUN",
                   help="continue RUN from its last finished epoch with its saved settings; of "
                        "the flags that change what it learns only --epochs may be given (train "
                        "to that many epochs in all)")
    p.add_argument("--amp", nargs="?", const="bf16", choices=AMP_MODES,
                   help="mixed precision: bf16 autocast (the default of a bare --amp) on CUDA or "
                        "on a CPU with bfloat16 instructions (AVX512-BF16, AMX); fp16 with loss "
                        "scaling on CUDA; auto: bf16 where it is fast, else float32; off: float32 "
                        "(default: the recipe's)")
    p.add_argument("--tensorboard", action="store_true",
                   help="also write TensorBoard event files into RUN/tensorboard/ (needs "
                        "pip install 'digitlab[tensorboard]')")
    add_limit_args(p)
    p.add_argument("--val-split", type=non_negative_int, nargs="?", default=0,
                   const=VALIDATION_SIZE, metavar="N",
                   help="hold out the last N training images and pick best.pt by their accuracy; "
                        f"without N, the last {VALIDATION_SIZE:,} (the validation split `digitlab "
                        "report` fits on). Default 0: train on all, best.pt is the best test "
                        "epoch, as the tutorial would")
    add_real_args(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bars (as -q)")


def cmd_train(args: argparse.Namespace) -> int:
    from digitlab.training.trainer import train

    if trains_line_reader(args):
        from digitlab.cli.lines import train_numbers

        return train_numbers(args)
    config, data_cfg, run_dir = resumed(args) if args.resume else configured(args)
    record = train(config, data_cfg, run_dir, resume=bool(args.resume))  # refuses other settings
    if int(os.environ.get("RANK", "0")) == 0:
        print(describe(record), flush=True)  # the result first; the plot is drawn before exit
        from digitlab.reports.plots import write_run_plot  # matplotlib: not before training

        write_run_plot(record)
    return 0


def trains_line_reader(args: argparse.Namespace) -> bool:
    """Whether the run is (or continues) the line reader's recipe."""
    if args.resume:
        from digitlab.training.runs import CONFIG

        try:
            return json.loads((Path(args.resume) / CONFIG).read_text()).get("recipe") in LINE_RECIPES
        except (OSError, ValueError, AttributeError):
            return False  # the digit trainer explains what is wrong with the folder
    return args.recipe in LINE_RECIPES


def describe(record: RunRecord) -> str:
    """One line: the model, its final test accuracy, epochs, time and run folder."""
    history = record.history
    return (f"{record.config.model}: test accuracy {100 * (record.accuracy or 0.0):.2f}% after "
            f"{len(history.epochs)} epoch(s), {history.total_seconds:.1f} s; run folder "
            f"{record.path}")


def configured(args: argparse.Namespace) -> tuple[TrainConfig, DataConfig, Path]:
    """The TrainConfig, DataConfig and run folder the flags ask for."""
    from digitlab.training.api import train_settings
    from digitlab.training.runs import default_run_dir

    overrides = {k: getattr(args, k) for k in TRAIN_OVERRIDES}
    config, data_cfg = train_settings(
        args.recipe or "tutorial", data_dir=args.data_dir, dataset=args.dataset or "mnist",
        train_limit=args.train_limit, test_limit=args.test_limit, val_split=args.val_split or 0,
        val_real=args.val_real or (), select_by=args.select_by, device=device_of(args),
        dry_run=args.dry_run, save_model=args.save_model,
        progress=shows_progress(args), tensorboard=args.tensorboard, **overrides,
    )
    return config, data_cfg, Path(args.out) if args.out else default_run_dir(config.recipe)


def resumed(args: argparse.Namespace) -> tuple[TrainConfig, DataConfig, Path]:
    """The settings saved in the run folder being resumed, with the flags given on top: the
    trainer refuses those that change what the run learns (all but --epochs)."""
    from digitlab.data import resolve_root
    from digitlab.training.runs import CONFIG, load_run

    run_dir = Path(args.resume)
    if args.out and Path(args.out) != run_dir:
        raise DigitlabError(f"--resume {run_dir} continues that folder in place; leave --out out")
    try:
        record = load_run(run_dir, partial=True)
    except DigitlabError as e:
        raise DigitlabError(f"cannot resume {run_dir}: {e}") from None
    if record.data is None:
        raise DigitlabError(f"cannot resume {run_dir}: its {CONFIG} has no data settings")
    given = {k: getattr(args, k) for k in ("recipe", *TRAIN_OVERRIDES) if getattr(args, k) is not None}
    given.update({k: True for k in ("dry_run", "save_model", "tensorboard") if getattr(args, k)})
    if args.device or args.no_accel:
        given["device"] = device_of(args)
    config = dataclasses.replace(record.config, progress=shows_progress(args), **given)
    data = {k: getattr(args, k) for k in DATA_OVERRIDES if getattr(args, k) is not None}
    if args.data_dir:
        data["root"] = resolve_root(args.data_dir)
    return config, dataclasses.replace(record.data, **data), run_dir
