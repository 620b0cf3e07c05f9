"""The `digitlab` command: one parser, thin handlers that call library functions."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from digitlab import __version__
from digitlab.errors import ConfigError, DigitlabError

logger = logging.getLogger("digitlab")


# ---------------------------------------------------------------- shared flags


def add_data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", metavar="DIR",
        help="data root (default: $DIGITLAB_DATA, else ~/.cache/digitlab)",
    )


def add_dataset_arg(parser: argparse.ArgumentParser) -> None:
    from digitlab.data import DATASETS, describe_datasets

    parser.add_argument("--dataset", default="mnist", choices=tuple(DATASETS), metavar="NAME",
                        help=f"data set (default: mnist): {describe_datasets()}")


def add_device_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default=None,
                        help="where to compute (default: auto = CUDA, else MPS, else CPU)")
    parser.add_argument("--no-accel", action="store_true", help="same as --device cpu")


def _device(args: argparse.Namespace) -> str:
    return "cpu" if args.no_accel else (args.device or "auto")


# ---------------------------------------------------------------- handlers


def cmd_data(args: argparse.Namespace) -> int:
    from digitlab import data
    from digitlab.data import fetch

    root, spec = data.resolve_root(args.data_dir), data.get_dataset(args.dataset)
    if args.action == "fetch":
        print(f"{spec.name} ready in {fetch.fetch(root, spec)}")
        return 0
    if args.action in ("verify", "info"):
        problems = data.verify(root, spec)
        print(f"{spec.name}: {data.raw_dir(root, spec)}")
        for name, problem in problems.items():
            path = data.raw_dir(root, spec) / name
            size = f"{path.stat().st_size:>10,d} bytes" if path.is_file() else " " * 16
            good = "ok (sha256 verified)" if spec.files[name] else "ok (IDX structure; no sha256 pinned)"
            print(f"  {name:<26} {size}  {problem or good}")
        if args.action == "info" and not any(problems.values()):
            for train in (True, False):
                images, _ = data.load_split(root, train, spec)
                print(f"  {'train' if train else 'test'}: {len(images)} images "
                      f"of {images.shape[1]}×{images.shape[2]}")
        return 1 if any(problems.values()) else 0
    if args.action == "stats":
        mean, std = data.compute_stats(data.load_split(root, True, spec)[0])
        print(f"{spec.name} training set: mean {mean:.4f}, std {std:.4f}")
        return 0
    from digitlab.writing.samples import write_samples

    images, labels = data.load_split(root, False, spec)
    paths = write_samples(images, labels, Path(args.out), per_class=args.per_class, spec=spec)
    print(f"wrote {len(paths)} sample images to {args.out}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from digitlab.data import resolve_root
    from digitlab.training.config import DataConfig, TrainConfig
    from digitlab.training.recipes import build_config
    from digitlab.training.runs import CONFIG, default_run_dir
    from digitlab.training.trainer import train

    if args.resume:
        run_dir = Path(args.resume)
        try:
            saved = json.loads((run_dir / CONFIG).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise DigitlabError(f"cannot resume {run_dir}: no readable {CONFIG} ({e})") from None
        config = TrainConfig.from_dict(saved)
        data_cfg = DataConfig(**{**saved["data"], "root": Path(saved["data"]["root"])})
    else:
        overrides = {k: getattr(args, k) for k in TRAIN_OVERRIDES}
        config = build_config(args.recipe, **overrides, device=_device(args),
                              dry_run=args.dry_run, save_model=args.save_model,
                              progress=not args.no_progress)
        data_cfg = DataConfig(root=resolve_root(args.data_dir), dataset=args.dataset,
                              train_limit=args.train_limit, test_limit=args.test_limit,
                              val_split=args.val_split)
        run_dir = Path(args.out) if args.out else default_run_dir(config.recipe)
    result = train(config, data_cfg, run_dir, resume=bool(args.resume))
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"{config.model}: test accuracy {100 * result.accuracy:.2f}% after {result.epochs} "
              f"epoch(s), {result.seconds:.1f} s; run folder {result.run_dir}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from digitlab.data import resolve_root
    from digitlab.reports.evaluation import evaluate_checkpoint, write_report
    from digitlab.training.config import DataConfig

    data_cfg = DataConfig(root=resolve_root(args.data_dir), test_limit=args.test_limit)
    report = evaluate_checkpoint(args.checkpoint, data_cfg, device=_device(args))
    out = Path(args.out) if args.out else Path(args.checkpoint).parent / "evaluation"
    json_path, png_path = write_report(report, out)
    print(f"test loss {report.stats.loss:.4f}, accuracy {100 * report.stats.accuracy:.2f}% "
          f"({report.stats.correct}/{report.stats.total})")
    for name, acc in zip(report.classes, report.stats.per_class_accuracy, strict=True):
        print(f"  class {name}: {100 * acc:.2f}%")
    print(f"wrote {json_path} and {png_path}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from digitlab.data import resolve_root
    from digitlab.reports.html import write_report
    from digitlab.reports.report import build_report
    from digitlab.training.config import DataConfig

    data_cfg = DataConfig(root=resolve_root(args.data_dir), test_limit=args.test_limit)
    report = build_report(args.checkpoint, data_cfg, device=_device(args), wild=args.wild)
    page = write_report(report, Path(args.out) if args.out else Path(args.checkpoint).parent / "report")
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


def cmd_study(args: argparse.Namespace) -> int:
    from digitlab.data import resolve_root
    from digitlab.studies import runner as study_runs
    from digitlab.studies import spec as study
    from digitlab.studies import summary as study_report
    from digitlab.training.config import DataConfig

    spec = study.build_spec(args.spec, args.vary, args.grid, args.seeds, args.recipe)
    plan = study.plan_runs(spec, epochs=args.epochs, device=_device(args))
    data_cfg = DataConfig(root=resolve_root(args.data_dir), train_limit=args.train_limit,
                          test_limit=args.test_limit)
    out = Path(args.out) if args.out else study_runs.default_study_dir(spec)
    outcomes = study_runs.run_study(plan, data_cfg, out, jobs=args.jobs or os.cpu_count() or 1)
    report = study_report.write_report(spec, plan, out)
    print(f"study {spec.name}: {len(plan)} runs, ranked by final test accuracy "
          f"(points against the reference):\n{study_report.format_ranking(report)}")
    print(f"wrote {out / 'summary.md'}, summary.csv and {len(report.figures)} figure(s)")
    failed = [o for o in outcomes if o.failed]
    for outcome in failed:
        print(f"digitlab: error: run {outcome.name} failed: {outcome.message}", file=sys.stderr)
    return 1 if failed else 0


def cmd_classify(args: argparse.Namespace) -> int:
    from digitlab.reading.predictor import Predictor, classify_files, expand_inputs

    if args.backend == "onnxruntime":
        from digitlab.export.exporter import OnnxPredictor

        if not args.model:
            raise ConfigError("--backend onnxruntime needs --model MODEL.onnx (from `digitlab export`)")
        predictor: Predictor = OnnxPredictor(args.model)
    else:
        predictor = Predictor.from_checkpoint(args.model)
    start = time.perf_counter()
    results = classify_files(
        predictor, expand_inputs(args.images), top_k=args.top_k, pipeline=args.preprocess,
        min_confidence=args.min_confidence, number=args.number,
        show_dir=Path(args.show) if args.show else None,
    )
    seconds = time.perf_counter() - start
    if args.json:
        print(json.dumps(results, indent=2))
    for result in results:
        if "error" in result:
            print(f"digitlab: error: {result['error']}", file=sys.stderr)
        elif not args.json:
            nothing = "no digit" if predictor.reads_digits else "nothing recognised"
            print(f"{result['path']}: {describe_result(result, nothing)}")
    if args.show:
        print(f"pictures in {args.show}/", file=sys.stderr)
    if len(results) > 1:
        print(f"{len(results)} images in {seconds:.2f} s ({len(results) / seconds:.0f} images/s, "
              "reading, preprocessing and classifying)", file=sys.stderr)
    return 1 if any("error" in r for r in results) else 0


def describe_result(result: dict[str, Any], nothing: str = "no digit") -> str:
    """One human line for a classify result; `nothing` is what an empty answer is called."""
    if "text" in result:
        digits = " ".join(f"{d['label'] or '?'} {100 * d['confidence']:.0f}%" for d in result["digits"])
        return f"{result['number'] or 'no number'} ({result['text']}: {digits})" if digits else "no digit"
    if result["no_digit"]:
        return f"{nothing} ({result.get('reason')})"
    return ", ".join(f"{t['label']} {100 * t['probability']:.1f}%" for t in result["top_k"])


def cmd_serve(args: argparse.Namespace) -> int:
    from digitlab.service import ServiceSettings, serve

    settings = ServiceSettings(model=args.model, min_confidence=args.min_confidence)
    serve(settings, host=args.host, port=args.port, workers=args.workers)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from digitlab.data import get_dataset, load_split, resolve_root
    from digitlab.export.exporter import export_model
    from digitlab.training.checkpoint import load_model

    model, checkpoint = load_model(args.checkpoint, "cpu")
    spec = get_dataset(checkpoint.dataset)
    images, _ = load_split(resolve_root(args.data_dir), train=False, spec=spec, limit=args.check_limit)
    check = export_model(model, checkpoint, args.out, args.format, images.float() / 255,
                         input_dtype=args.input)
    print(f"wrote {args.out} ({args.format}, {args.input} N×28×28 input): same predictions as "
          f"PyTorch on {check.images} test digits, largest probability difference "
          f"{check.max_difference:.1e}")
    return 0


def cmd_pack(args: argparse.Namespace) -> int:
    from digitlab.training.checkpoint import pack_checkpoint

    calibration = None
    if args.calibrate:
        from digitlab.data import resolve_root
        from digitlab.reports.report import fit_checkpoint_temperature
        from digitlab.training.config import DataConfig

        calibration = fit_checkpoint_temperature(
            args.checkpoint, DataConfig(root=resolve_root(args.data_dir)), device=_device(args))
        seen = {True: "", False: " (the model was trained on them)",
                None: " (the model may have been trained on them)"}[calibration["held_out"]]
        print(f"temperature {calibration['temperature']:.3f}, fitted on the "
              f"{calibration['validation']}{seen}: validation NLL {calibration['nll_before']:.4f} "
              f"→ {calibration['nll_after']:.4f}")
    record = pack_checkpoint(args.checkpoint, args.out, calibration)
    print(f"wrote {args.out} ({record['bytes'] / 1e6:.2f} MB, test accuracy "
          f"{100 * (record['test_accuracy'] or 0):.2f}%) and its training record")
    return 0


# ---------------------------------------------------------------- parser

TRAIN_OVERRIDES = ("model", "batch_size", "test_batch_size", "epochs", "lr", "gamma", "seed",
                   "log_interval", "optimizer", "weight_decay", "loss")


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


def add_train_args(p: argparse.ArgumentParser) -> None:
    from digitlab.training.recipes import RECIPES

    recipes = ", ".join(RECIPES)
    p.add_argument("--recipe", default="tutorial", help=f"starting settings: {recipes}")
    p.add_argument("--model", help="model name (default: the recipe's)")
    p.add_argument("--batch-size", type=int, metavar="N", help="training batch (tutorial: 64)")
    p.add_argument("--test-batch-size", type=int, metavar="N", help="test batch (tutorial: 1000)")
    p.add_argument("--epochs", type=int, metavar="N", help="epochs (tutorial: 14)")
    p.add_argument("--lr", type=float, help="learning rate (tutorial: 1.0)")
    p.add_argument("--gamma", type=float, help="StepLR decay per epoch (tutorial: 0.7)")
    p.add_argument("--optimizer", help="adadelta, sgd, adam or adamw (tutorial: adadelta)")
    p.add_argument("--weight-decay", type=float, help="weight decay (tutorial: 0)")
    p.add_argument("--loss", choices=("nll", "cross-entropy", "mse"),
                   help="training loss: nll = cross-entropy (tutorial), or mse of the softmax "
                        "against one-hot targets")
    p.add_argument("--seed", type=int, help="random seed (tutorial: 1)")
    p.add_argument("--log-interval", type=int, metavar="N", help="batches between loss logs (10)")
    p.add_argument("--dry-run", action="store_true", help="one batch, one epoch: a smoke test")
    p.add_argument("--save-model", action="store_true",
                   help="also write mnist_cnn.pt, a bare state_dict as the tutorial saves")
    p.add_argument("--out", metavar="DIR", help="run folder (default: runs/<recipe>-<time>)")
    p.add_argument("--resume", metavar="RUN", help="continue RUN from its last finished epoch")
    p.add_argument("--train-limit", type=positive_int, metavar="N",
                   help="train on the first N images only")
    p.add_argument("--test-limit", type=positive_int, metavar="N",
                   help="test on the first N images only")
    p.add_argument("--val-split", type=non_negative_int, default=0, metavar="N",
                   help="hold out the last N training images and pick best.pt by their accuracy "
                        "(default 0: best.pt is the best test epoch, as the tutorial would)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="digitlab", description=__doc__)
    parser.add_argument("--version", action="version", version=f"digitlab {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, handler: Callable[[argparse.Namespace], int], text: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text, description=text)
        p.set_defaults(handler=handler)
        return p

    p = command("data", cmd_data, "fetch, verify, describe a data set; make sample images")
    p.add_argument("action", choices=("fetch", "verify", "info", "stats", "samples"))
    add_dataset_arg(p)
    p.add_argument("--out", default="samples", help="samples: output folder")
    p.add_argument("--per-class", type=positive_int, default=1,
                   help="samples: images per class and condition")
    add_data_args(p)

    p = command("train", cmd_train, "train a model and write a run folder")
    add_train_args(p)
    add_dataset_arg(p)
    add_data_args(p)
    add_device_args(p)

    p = command("evaluate", cmd_evaluate, "test a checkpoint: accuracy, per class, confusion")
    p.add_argument("checkpoint", help="a .pt file")
    p.add_argument("--out", metavar="DIR", help="where to write (default: beside the checkpoint)")
    p.add_argument("--test-limit", type=positive_int, metavar="N", help="first N test images")
    add_data_args(p)
    add_device_args(p)

    p = command("report", cmd_report, "one HTML page about a checkpoint: numbers, confusions, "
                "misread digits, calibration, training curves")
    p.add_argument("checkpoint", help="a .pt file")
    p.add_argument("--out", metavar="DIR", help="where to write (default: <checkpoint folder>/report)")
    p.add_argument("--wild", metavar="FILE", help="results of benchmarks/in_the_wild.py --json "
                   "(default: in_the_wild.json beside the checkpoint, if there)")
    p.add_argument("--test-limit", type=positive_int, metavar="N", help="first N test images")
    add_data_args(p)
    add_device_args(p)

    p = command("plot", cmd_plot, "plot loss and accuracy of one or more runs")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders")
    p.add_argument("--out", metavar="PNG", help="output file (default: <first run>/performance.png)")

    p = command("study", cmd_study, "a parameter study: a base run and variants, compared")
    p.add_argument("spec", nargs="?", metavar="SPEC",
                   help="a TOML (or YAML) study file, or a shipped study's name (part2)")
    p.add_argument("--vary", action="append", metavar="NAME=V1,V2",
                   help="a factor and its values (repeatable; adds to or replaces SPEC's)")
    p.add_argument("--recipe", help="the base recipe without SPEC (default: tutorial-mlp)")
    p.add_argument("--grid", action="store_true", help="every combination, not one at a time")
    p.add_argument("--seeds", type=int, nargs="+", metavar="SEED", help="repeat every run per seed")
    p.add_argument("--epochs", type=positive_int, metavar="N",
                   help="epochs of every run; an epochs factor keeps its ratio to the base")
    p.add_argument("--jobs", type=positive_int, metavar="N",
                   help="runs at once, each in its own process (default: the number of cores)")
    p.add_argument("--out", metavar="DIR", help="study folder (default: runs/study-<name>)")
    p.add_argument("--train-limit", type=positive_int, metavar="N",
                   help="train on the first N images only")
    p.add_argument("--test-limit", type=positive_int, metavar="N",
                   help="test on the first N images only")
    add_data_args(p)
    add_device_args(p)

    p = command("serve", cmd_serve, "serve the drawing page and the JSON API (/api/v1, /docs)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=positive_int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=positive_int, default=1, metavar="N",
                   help="server processes, each with its own model copy (default 1; use the "
                        "number of cores for the most requests/s)")
    p.add_argument("--model", metavar="CHECKPOINT",
                   help="a .pt from `digitlab train` (default: the model shipped with digitlab)")
    p.add_argument("--min-confidence", type=probability, default=0.5, metavar="P",
                   help="below this the answer is 'no digit' (default 0.5)")

    p = command("pack", cmd_pack, "write a slim inference copy of a checkpoint + training record")
    p.add_argument("checkpoint", help="a .pt from `digitlab train`")
    p.add_argument("--out", required=True, metavar="PT", help="where to write the slim .pt")
    p.add_argument("--calibrate", action="store_true",
                   help="fit a temperature on the validation split (the last 5,000 training "
                        "images) so that confidences match accuracy, and store it")
    add_data_args(p)
    add_device_args(p)

    p = command("export", cmd_export, "export a checkpoint to ONNX or TorchScript, checked first")
    p.add_argument("checkpoint", help="a .pt from `digitlab train` or `digitlab pack`")
    p.add_argument("--format", required=True, choices=("onnx", "torchscript"))
    p.add_argument("--out", required=True, metavar="FILE", help="where to write (.onnx or .pt)")
    p.add_argument("--input", default="float", choices=("float", "uint8"),
                   help="the graph's input: float pixels in [0, 1] (default) or uint8 0-255")
    p.add_argument("--check-limit", type=positive_int, metavar="N",
                   help="check on the first N test digits only (default: all 10,000)")
    add_data_args(p)

    p = command("classify", cmd_classify,
                "read the digit in each image (or the class, for a model of another data set)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="files, folders or globs")
    p.add_argument("--model", metavar="CHECKPOINT",
                   help="a .pt from `digitlab train` (default: the model shipped with digitlab), "
                        "or with --backend onnxruntime a .onnx from `digitlab export`")
    p.add_argument("--backend", default="torch", choices=("torch", "onnxruntime"),
                   help="run the model in PyTorch (default) or onnxruntime")
    p.add_argument("--top-k", type=positive_int, default=1, help="show the K likeliest classes")
    p.add_argument("--json", action="store_true", help="print a JSON array, one object per image")
    p.add_argument("--preprocess", choices=("robust", "product", "naive"),
                   help="robust: find, crop and centre a digit (digit models' default); "
                        "product: trim, fit and centre one object, as Fashion-MNIST was made "
                        "(its models' default); naive: the tutorial's squash-to-28×28")
    p.add_argument("--min-confidence", type=probability, default=0.5, metavar="P",
                   help="below this the answer is 'no digit' (default 0.5)")
    p.add_argument("--number", action="store_true", help="read a number: several digits in a row")
    p.add_argument("--show", nargs="?", const="classify-show", metavar="DIR",
                   help="write a picture per input (default folder: classify-show)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))  # under torchrun, rank 0 speaks for the job
    logging.basicConfig(
        level=logging.WARNING if args.quiet or rank else logging.INFO,
        format="%(message)s" if not rank else f"[rank {rank}] %(message)s",
        stream=sys.stderr, force=True,
    )
    try:
        return int(args.handler(args))
    except DigitlabError as e:
        print(f"digitlab: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("digitlab: interrupted", file=sys.stderr)
        return 130
