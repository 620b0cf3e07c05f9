"""`digitlab evaluate`, `report` and `plot`: what a checkpoint or a run achieved."""

from __future__ import annotations

import argparse
from pathlib import Path

from digitlab.cli.args import (
    CHECKPOINT_HELP,
    Command,
    add_data_args,
    add_device_args,
    add_limit_args,
    beside_checkpoint,
    device_of,
)


def register(command: Command) -> None:
    p = command("evaluate", cmd_evaluate, "test a checkpoint: accuracy, per class, confusion matrix", """
digitlab evaluate runs/fast/best.pt                    # writes runs/fast/evaluation/
digitlab evaluate mnist_cnn.pt --test-limit 1000       # the tutorial's own saved weights
digitlab evaluate default                              # the model shipped with digitlab
""")
    p.add_argument("checkpoint", help=CHECKPOINT_HELP)
    p.add_argument("--out", metavar="DIR", help="where to write (default: evaluation/ beside the "
                   "checkpoint; for the shipped model, in the current folder)")
    add_limit_args(p, train=False)
    add_data_args(p)
    add_device_args(p)

    p = command("report", cmd_report, "one offline HTML page about a checkpoint: scores per class, "
                "confusions, misread digits, calibration, training curves", """
digitlab report runs/fast/best.pt                      # writes runs/fast/report/report.html
""")
    p.add_argument("checkpoint", help=CHECKPOINT_HELP)
    p.add_argument("--out", metavar="DIR", help="where to write (default: <checkpoint folder>/report; "
                   "for the shipped model, report/ in the current folder)")
    p.add_argument("--wild", metavar="FILE", help="results of `digitlab bench wild --json` "
                   "(default: in_the_wild.json beside the checkpoint, if there)")
    add_limit_args(p, train=False)
    add_data_args(p)
    add_device_args(p)

    p = command("plot", cmd_plot, "plot training loss and test accuracy of runs against samples seen", """
digitlab plot runs/fast                                # writes runs/fast/performance.png
digitlab plot runs/a runs/b --out compare.png          # several runs overlaid
""")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders")
    p.add_argument("--out", metavar="PNG", help="output file (default: <first run>/performance.png)")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from digitlab.data import resolve_root
    from digitlab.reports.evaluation import evaluate_checkpoint, write_evaluation
    from digitlab.training.config import DataConfig

    data_cfg = DataConfig(root=resolve_root(args.data_dir), test_limit=args.test_limit)
    report = evaluate_checkpoint(args.checkpoint, data_cfg, device=device_of(args))
    out = Path(args.out) if args.out else beside_checkpoint(args.checkpoint, "evaluation")
    json_path, png_path = write_evaluation(report, out)
    print(f"test loss {report.stats.loss:.4f}, accuracy {100 * report.stats.accuracy:.2f}% "
          f"({report.stats.correct}/{report.stats.total})")
    for name, acc in zip(report.classes, report.stats.per_class_accuracy, strict=True):
        print(f"  class {name}: {100 * acc:.2f}%")
    print(f"wrote {json_path} and {png_path}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from digitlab.data import resolve_root
    from digitlab.reports.html import write_html_report
    from digitlab.reports.report import build_report
    from digitlab.training.config import DataConfig

    data_cfg = DataConfig(root=resolve_root(args.data_dir), test_limit=args.test_limit)
    report = build_report(args.checkpoint, data_cfg, device=device_of(args), wild=args.wild)
    out = Path(args.out) if args.out else beside_checkpoint(args.checkpoint, "report")
    page = write_html_report(report, out)
    stats, cal = report.evaluation.stats, report.calibration
    print(f"test accuracy {100 * stats.accuracy:.2f}% ({stats.correct}/{stats.total}), loss "
          f"{stats.loss:.4f}; calibration error (ECE) {100 * cal.test.ece:.2f}%, "
          f"{100 * cal.test_scaled.ece:.2f}% at temperature {cal.temperature:.3f}")
    print(f"wrote {page} (self-contained; its PNGs and report.json beside it)")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from digitlab.reports.plots import plot_performance, save_figure
    from digitlab.training.runs import PLOT, load_run

    runs = [load_run(path) for path in args.runs]
    out = Path(args.out) if args.out else runs[0].path / PLOT
    save_figure(plot_performance(runs), out)
    print(f"wrote {out}")
    return 0
