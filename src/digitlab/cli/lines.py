"""`digitlab train --recipe numbers`: train the line reader (digitlab.training.lines)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from digitlab.cli.args import shows_progress
from digitlab.errors import DigitlabError

# train flags the line reader's recipe takes, by their LineTrainConfig name
LINE_OVERRIDES = {"epochs": "epochs", "batch_size": "batch_size", "lr": "lr", "seed": "seed",
                  "train_limit": "lines_per_epoch", "test_limit": "val_lines"}


def train_numbers(args: argparse.Namespace) -> int:
    from digitlab.reports.plots import plot_line_history, save_figure
    from digitlab.training.lines import LineTrainConfig, train_line_reader
    from digitlab.training.runs import default_run_dir

    given = {name: getattr(args, flag) for flag, name in LINE_OVERRIDES.items()
             if getattr(args, flag, None) is not None}
    if args.amp:
        given["amp"] = "on"
    if args.val_real or args.select_by:
        raise DigitlabError("--val-real and --select-by judge a digit recipe; the numbers recipe "
                            "is judged by its synthetic fields")
    if args.resume:
        run_dir = Path(args.resume)
        saved = {k: v for k, v in json.loads((run_dir / "config.json").read_text()).items() if k != "recipe"}
        saved["widths"] = tuple(saved.get("widths", ()))
        changed = sorted(k for k, v in given.items() if k != "epochs" and saved.get(k) != v)
        if changed:
            raise DigitlabError(f"--resume {run_dir} keeps its settings; only --epochs may change "
                                f"(given: {', '.join(changed)})")
        config = dataclasses.replace(LineTrainConfig(**saved), **given)
    else:
        run_dir = Path(args.out) if args.out else default_run_dir("numbers")
        config = LineTrainConfig(data_dir=args.data_dir, dry_run=args.dry_run, **given)
    history = train_line_reader(config, run_dir, resume=bool(args.resume), progress=shows_progress(args))
    save_figure(plot_line_history(history.epochs), run_dir / "performance.png")
    last = history.epochs[-1]
    print(f"linenet: synthetic fields {100 * last['val_exact']:.2f}% exact "
          f"({100 * last['val_digits']:.2f}% of digits) after {len(history.epochs)} epoch(s), "
          f"{sum(e['seconds'] for e in history.epochs):.0f} s; run folder {run_dir}")
    return 0
