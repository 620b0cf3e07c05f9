"""Reading whole numbers: the line reader against the segmenting reader, exact and per digit.

Scores our rendered numbers (2-8 MNIST *test* digits, digitlab.writing.wild), the small-number
condition and, with --real DIR, folders of real numbers (the label is the digits before the
first `_` of each file name). For each reader: exact strings and digit accuracy (1 - edit
distance / length) per length, and pictures per second (reading only, files already decoded).

    python benchmarks/number_fields.py                                   # rendered numbers, both readers
    python benchmarks/number_fields.py --per-condition 0 --real ../shared/real-numbers --readers line
    python benchmarks/number_fields.py --line-model runs/numbers/best.pt --failures out/
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

from PIL import Image

from digitlab import data
from digitlab.predicting.predictor import NUMBER_READERS, Predictor
from digitlab.reading.images import IMAGE_SUFFIXES, load_image
from digitlab.training.lines import edit_distance
from digitlab.writing import wild


def score(predictor: Predictor, reader: str, pictures: list[Image.Image], labels: list[str],
          names: list[str] | None = None, failures: Path | None = None) -> dict:
    start = time.perf_counter()
    readings = predictor.read_numbers(pictures, min_confidence=0.0, reader=reader)
    seconds = time.perf_counter() - start
    by_length: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # n, exact, errors, digits
    for i, (reading, label) in enumerate(zip(readings, labels, strict=True)):
        text = "".join(d.label or "?" for d in reading.digits)
        row = by_length[len(label)]
        row[0] += 1
        row[1] += text == label
        row[2] += edit_distance(text, label)
        row[3] += len(label)
        if failures is not None and text != label and names is not None:
            folder = failures / reader
            folder.mkdir(parents=True, exist_ok=True)
            pictures[i].save(folder / f"{label}_read_{text or 'nothing'}_{Path(names[i]).stem}.png")
    total = [sum(r[k] for r in by_length.values()) for k in range(4)]
    return {"n": total[0], "exact": total[1] / max(total[0], 1), "digits": 1 - total[2] / max(total[3], 1),
            "per_s": total[0] / seconds,
            "by_length": {n: {"n": r[0], "exact": r[1] / r[0], "digits": 1 - r[2] / r[3]}
                          for n, r in sorted(by_length.items())}}


def load_real(folder: Path) -> tuple[list[Image.Image], list[str], list[str]]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                   and p.name.split("_")[0].isdigit())
    return [load_image(p) for p in files], [p.name.split("_")[0] for p in files], [p.name for p in files]


def report(title: str, results: dict[str, dict]) -> None:
    print(f"\n{title}")
    for reader, r in results.items():
        lengths = ", ".join(f"{n}: {100 * v['exact']:.0f}% of {v['n']}" for n, v in r["by_length"].items())
        print(f"  {reader:8s} exact {100 * r['exact']:5.1f}%  digits {100 * r['digits']:5.1f}%  "
              f"{r['per_s']:6.0f} pictures/s   by length: {lengths}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="digit model (default: the packaged one)")
    parser.add_argument("--line-model", default=None, help="line reader (default: the packaged one)")
    parser.add_argument("--readers", nargs="+", default=list(NUMBER_READERS), choices=NUMBER_READERS)
    parser.add_argument("--per-condition", type=int, default=300, help="0: rendered numbers skipped")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--real", metavar="DIR", type=Path, action="append", default=[],
                        help="also score this folder of real numbers (repeatable)")
    parser.add_argument("--failures", metavar="DIR", type=Path, help="save each misread real picture here")
    args = parser.parse_args()

    predictor = Predictor.from_checkpoint(args.model)
    if args.line_model:
        predictor.use_line_reader(args.line_model)
    if args.per_condition > 0:
        images, labels = data.load_split(data.resolve_root(args.data_dir), train=False)
        for condition in wild.NUMBERS:
            samples = wild.render_condition(condition, images, labels, args.per_condition, args.seed)
            pictures, truth = [s.image for s in samples], [s.label for s in samples]
            report(f"rendered {condition} (seed {args.seed})",
                   {r: score(predictor, r, pictures, truth) for r in args.readers})
    for folder in args.real:
        pictures, truth, names = load_real(folder)
        report(f"real numbers in {folder}",
               {r: score(predictor, r, pictures, truth, names, args.failures) for r in args.readers})


if __name__ == "__main__":
    main()
