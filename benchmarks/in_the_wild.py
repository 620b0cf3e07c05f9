"""Accuracy on digits written the way users write them, naive pipeline against ours.

Renders MNIST *test* digits as mouse/touch canvases, ink on paper, phone photos, thin-pen scans,
plus printed digits from the machine's fonts and multi-digit numbers (see digitlab.writing.wild), all
reproducible from --seed, then reads them with a model through both preprocessing pipelines.

    python benchmarks/in_the_wild.py                       # the packaged default model
    python benchmarks/in_the_wild.py --model runs/X/last.pt --per-condition 500 --json out.json
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

from digitlab import data
from digitlab.reading.predictor import MIN_CONFIDENCE, Predictor
from digitlab.writing import wild


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="checkpoint (default: the packaged model)")
    parser.add_argument("--per-condition", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--save", metavar="DIR", help="also write the images and a manifest here")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    args = parser.parse_args()

    predictor = Predictor.from_checkpoint(args.model)
    images, labels = data.load_split(data.resolve_root(args.data_dir), train=False)
    start = time.perf_counter()
    samples = wild.make_wild_set(images, labels, args.per_condition, args.seed)
    print(f"rendered {len(samples)} images in {time.perf_counter() - start:.0f} s (seed {args.seed})")
    if args.save:
        wild.save_wild_set(samples, Path(args.save))
    by_condition: dict[str, list[wild.WildSample]] = defaultdict(list)
    for sample in samples:
        by_condition[sample.condition].append(sample)

    results: dict[str, dict] = {}
    for condition, group in by_condition.items():
        if condition == wild.NUMBER:
            results[condition] = {"robust": score_numbers(predictor, group)}
        else:
            results[condition] = {p: score_digits(predictor, group, p) for p in ("naive", "robust")}

    print(f"\nmodel: {args.model or 'packaged default'}; accuracy per condition (argmax; 'unsure' = "
          f"confidence below {MIN_CONFIDENCE}, which classify reports as 'no digit')")
    print(f"{'condition':<12}{'n':>6}{'naive':>10}{'digitlab':>10}{'unsure':>8}")
    for condition, scores in results.items():
        naive = f"{100 * scores['naive']['accuracy']:.1f}%" if "naive" in scores else "—"
        ours = scores["robust"]
        unsure = ours.get("below_threshold", "")
        print(f"{condition:<12}{ours['n']:>6}{naive:>10}{100 * ours['accuracy']:>9.1f}%{unsure:>8}")
    if wild.NUMBER in results:
        print(f"(number: exact string match; per-digit accuracy "
              f"{100 * results[wild.NUMBER]['robust']['digit_accuracy']:.1f}%; the naive pipeline "
              "cannot split numbers)")
    if args.json:
        from digitlab.files import write_json

        write_json(args.json, {"model": args.model, "seed": args.seed, "results": results})


if __name__ == "__main__":
    main()
