"""`digitlab classify`: read the digit (or number) in image files with a trained model."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from digitlab.cli.args import Command, positive_int, probability
from digitlab.errors import ConfigError


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
    from digitlab.reading.predictor import classify_files, expand_inputs

    predictor = load_predictor(args.model, args.backend)
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


def load_predictor(model: str | None, backend: str) -> Any:
    from digitlab.reading.predictor import Predictor

    if backend == "onnxruntime" and not model:
        raise ConfigError("--backend onnxruntime needs --model MODEL.onnx (from `digitlab export`)")
    return Predictor.load(model, backend=backend)


def describe_result(result: dict[str, Any], nothing: str = "no digit") -> str:
    """One human line for a classify result; `nothing` is what an empty answer is called."""
    if "text" in result:
        digits = " ".join(f"{d['label'] or '?'} {100 * d['confidence']:.0f}%" for d in result["digits"])
        return f"{result['number'] or 'no number'} ({result['text']}: {digits})" if digits else "no digit"
    if result["no_digit"]:
        return f"{nothing} ({result.get('reason')})"
    return ", ".join(f"{t['label']} {100 * t['probability']:.1f}%" for t in result["top_k"])
