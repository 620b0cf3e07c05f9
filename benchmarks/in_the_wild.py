"""Accuracy on digits written the way users write them: naive, plain and robust preprocessing.

Renders MNIST *test* digits as mouse/touch canvases, ink on paper, phone photos, thin-pen scans,
continental styles, low-resolution scans, shadowed photos, marker, handwriting fonts, printed
digits and multi-digit numbers (see digitlab.writing.wild), all reproducible from --seed, then reads
them with one model through three preprocessing pipelines: `naive` (the tutorial's squash),
`plain` (invert, crop, 20 px, centre by mass) and `robust` (digitlab's). With --real DIR it
also scores a folder of real labelled digits (file names start with the digit and `_`; an
optional labels.csv with `file`, `source` and `kind` columns groups them).

    python benchmarks/in_the_wild.py                       # the packaged default model
    python benchmarks/in_the_wild.py --per-condition 300 --real ../shared/real-digits
    python benchmarks/in_the_wild.py --model runs/X/last.pt --per-condition 500 --json out.json
    python benchmarks/in_the_wild.py --per-condition 0 --real DIR --failures out/   # real only
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import defaultdict
from pathlib import Path

from digitlab import data
from digitlab.batch.stream import FileReading
from digitlab.predicting.predictor import MIN_CONFIDENCE, Predictor
from digitlab.reading.images import IMAGE_SUFFIXES, load_image
from digitlab.reports.show import write_show
from digitlab.writing import wild

PIPELINES = ("naive", "plain", "robust")


def score_digits(predictor: Predictor, samples: list[wild.WildSample], pipeline: str) -> dict:
    readings = predictor.read_digits([s.image for s in samples], pipeline, min_confidence=0.0)
    right = [
        r.digit is not None and predictor.classes[r.digit] == s.label
        for r, s in zip(readings, samples, strict=True)
    ]
    unsure = sum(r.confidence < MIN_CONFIDENCE for r in readings)
    return {"accuracy": sum(right) / len(right), "n": len(right), "below_threshold": unsure}


def score_numbers(predictor: Predictor, samples: list[wild.WildSample]) -> dict:
    exact = digits_right = digits_total = 0
    for s in samples:
        reading = predictor.read_number(s.image, min_confidence=0.0)
        text = "".join(d.label for d in reading.digits if d.label is not None)
        exact += text == s.label
        if len(text) == len(s.label):  # per-digit credit only when the split was right
            digits_right += sum(a == b for a, b in zip(text, s.label, strict=True))
        digits_total += len(s.label)
    return {"accuracy": exact / len(samples), "n": len(samples),
            "digit_accuracy": digits_right / digits_total}


def load_real(folder: Path) -> list[tuple[Path, str, str, str]]:
    """(path, label, source, kind) for each image in `folder` whose name starts with "<digit>_"."""
    meta: dict[str, dict[str, str]] = {}
    if (folder / "labels.csv").is_file():
        with open(folder / "labels.csv", newline="") as f:
            meta = {row["file"]: row for row in csv.DictReader(f)}
    found = []
    for path in sorted(folder.iterdir()):
        label = path.name.split("_", 1)[0]
        if path.suffix.lower() in IMAGE_SUFFIXES and "_" in path.name and label.isdigit():
            row = meta.get(path.name, {})
            found.append((path, label, row.get("source", "?"), row.get("kind", "?")))
    return found


def score_real(predictor: Predictor, folder: Path, failures: Path | None) -> dict:
    """Accuracy per pipeline over the folder, per source and per kind; misreads drawn if asked."""
    items = load_real(folder)
    images = [load_image(path) for path, *_ in items]
    right: dict[str, list[bool]] = {}
    for pipeline in PIPELINES:
        readings = predictor.read_digits(images, pipeline, min_confidence=0.0)
        right[pipeline] = [r.digit is not None and predictor.classes[r.digit] == label
                           for r, (_, label, _, _) in zip(readings, items, strict=True)]
        if failures is None or pipeline == "naive":
            continue
        for i, (reading, ok) in enumerate(zip(readings, right[pipeline], strict=True)):
            if not ok:
                result = FileReading(str(items[i][0]), reading, image=images[i])
                write_show(result, predictor.classes, failures / pipeline, i)
    groups: dict[str, dict[str, list[int]]] = {"all": {"all": list(range(len(items)))},
                                               "kind": defaultdict(list), "source": defaultdict(list)}
    for i, (_, _, source, kind) in enumerate(items):
        groups["kind"][kind].append(i)
        groups["source"][source].append(i)
    return {
        by: {name: {p: {"accuracy": sum(right[p][i] for i in idx) / len(idx), "n": len(idx),
                        "right": sum(right[p][i] for i in idx)} for p in PIPELINES}
             for name, idx in sorted(members.items())}
        for by, members in groups.items()
    }


def print_table(title: str, rows: dict[str, dict[str, dict]]) -> None:
    print(f"\n{title:<44}{'n':>5}" + "".join(f"{p:>9}" for p in PIPELINES) + f"{'unsure':>8}")
    for name, scores in rows.items():
        n = next(iter(scores.values()))["n"]
        cells = "".join(f"{100 * scores[p]['accuracy']:>8.1f}%" if p in scores else f"{'—':>9}"
                        for p in PIPELINES)
        unsure = scores.get("robust", {}).get("below_threshold", "")
        print(f"{name:<44}{n:>5}{cells}{unsure:>8}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="checkpoint (default: the packaged model)")
    parser.add_argument("--per-condition", type=int, default=300, help="0: rendered set skipped")
    parser.add_argument("--conditions", nargs="+", metavar="NAME",
                        help=f"only these (default: all of {', '.join((*wild.CONDITIONS, *wild.NUMBERS))})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--real", metavar="DIR", type=Path, help="also score real labelled digits here")
    parser.add_argument("--failures", metavar="DIR", type=Path,
                        help="with --real: draw each misread (plain, robust) into DIR/<pipeline>/")
    parser.add_argument("--save", metavar="DIR", help="also write the images and a manifest here")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    args = parser.parse_args()

    predictor = Predictor.from_checkpoint(args.model)
    results: dict[str, dict] = {}
    if args.per_condition > 0:
        images, labels = data.load_split(data.resolve_root(args.data_dir), train=False)
        start = time.perf_counter()
        samples = []
        for condition in args.conditions or (*wild.CONDITIONS, *wild.NUMBERS):
            samples += wild.render_condition(condition, images, labels, args.per_condition, args.seed)
        print(f"rendered {len(samples)} images in {time.perf_counter() - start:.0f} s (seed {args.seed})")
        if args.save:
            wild.save_wild_set(samples, Path(args.save))
        by_condition: dict[str, list[wild.WildSample]] = defaultdict(list)
        for sample in samples:
            by_condition[sample.condition].append(sample)
        for condition, group in by_condition.items():
            if condition in wild.NUMBERS:
                results[condition] = {"robust": score_numbers(predictor, group)}
            else:
                results[condition] = {p: score_digits(predictor, group, p) for p in PIPELINES}
        print(f"\nmodel: {args.model or 'packaged default'}; accuracy per condition (argmax; "
              f"'unsure' = robust's confidence below {MIN_CONFIDENCE}, which classify reports "
              "as 'no digit')")
        print_table("condition", results)
        for name in wild.NUMBERS:
            if name in results:
                print(f"({name}: exact string match; per-digit accuracy "
                      f"{100 * results[name]['robust']['digit_accuracy']:.1f}%; naive and "
                      "plain cannot split numbers)")
    real = score_real(predictor, args.real, args.failures) if args.real else None
    if real is not None:
        print_table(f"real digits in {args.real}", real["all"])
        print_table("per kind", real["kind"])
        print_table("per source", real["source"])
    if args.json:
        from digitlab.files import write_json

        write_json(args.json, {"model": args.model, "seed": args.seed, "results": results,
                               **({"real": real} if real is not None else {})})


if __name__ == "__main__":
    main()
