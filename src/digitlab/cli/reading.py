"""`digitlab classify`: read the digit (or number) in image files with a trained model."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from digitlab.cli.args import Command, positive_int, probability
from digitlab.errors import ConfigError

if TYPE_CHECKING:  # the parser is built without torch: reading modules are imported when run
    from digitlab.reading.files import FileReading
    from digitlab.reading.predictor import Predictor


def register(command: Command) -> None:
    p = command("classify", cmd_classify, "read the digit in each image (or the class, for a model "
                "of another data set)", """
digitlab classify my-digit.png                         # the model shipped with digitlab
digitlab classify photos/ --json --top-k 3
digitlab classify --number photo-of-2024.jpg --show    # several digits in a row, with pictures
digitlab classify digits/ --model runs/fast/best.pt --preprocess naive
""")
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


def cmd_classify(args: argparse.Namespace) -> int:
    from digitlab.reading.files import classify_files, expand_inputs

    predictor = load_predictor(args.model, args.backend)
    nothing = "no digit" if predictor.reads_digits else "nothing recognised"
    start = time.perf_counter()
    results = classify_files(
        predictor, expand_inputs(args.images), top_k=args.top_k, pipeline=args.preprocess,
        min_confidence=args.min_confidence, number=args.number,
    )
    shown: dict[int, Path] = {}
    if args.show:
        from digitlab.reports.show import write_shows

        shown = write_shows(results, predictor.classes, Path(args.show), nothing)
    seconds = time.perf_counter() - start
    print_results(results, shown, args.json, nothing)
    if args.show:
        print(f"pictures in {args.show}/", file=sys.stderr)
    if len(results) > 1:
        print(f"{len(results)} images in {seconds:.2f} s ({len(results) / seconds:.0f} images/s, "
              "reading, preprocessing and classifying)", file=sys.stderr)
    return 1 if any(r.reading is None for r in results) else 0


def load_predictor(model: str | None, backend: str) -> Predictor:
    from digitlab.reading.predictor import Predictor

    if backend == "onnxruntime" and not model:
        raise ConfigError("--backend onnxruntime needs --model MODEL.onnx (from `digitlab export`)")
    return Predictor.load(model, backend=backend)


def print_results(results: list[FileReading], shown: dict[int, Path], as_json: bool, nothing: str) -> None:
    """A JSON array (with each picture's path) or a line per file on stdout; errors on stderr."""
    if as_json:
        print(json.dumps([{**r.to_dict(), **({"show": str(shown[i])} if i in shown else {})}
                          for i, r in enumerate(results)], indent=2))
    for result in results:
        if result.reading is None:
            print(f"digitlab: error: {result.error}", file=sys.stderr)
        elif not as_json:
            print(f"{result.path}: {result.reading.describe(nothing)}")
