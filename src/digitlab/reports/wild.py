"""Accuracy on digits written the way users write them: naive, plain and robust preprocessing.

Renders MNIST *test* digits as mouse/touch canvases, ink on paper, phone photos, thin-pen scans,
continental styles, low-resolution scans, shadowed photos, marker, handwriting fonts, printed
digits and multi-digit numbers (digitlab.writing.wild), reproducible from a seed, then reads
them with one model through three preprocessing pipelines: `naive` (the tutorial's squash),
`plain` (invert, crop, 20 px, centre by mass) and `robust` (digitlab's). A folder of real
labelled digits (reading.labelled: file names start with the digit and `_`; an optional
labels.csv groups them by source and kind) is scored the same way. `digitlab bench wild` and
benchmarks/in_the_wild.py run it; `digitlab report` shows its JSON.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from digitlab.batch.stream import FileReading
from digitlab.predicting.predictor import MIN_CONFIDENCE, Predictor
from digitlab.reading.images import load_image
from digitlab.reading.labelled import load_labelled
from digitlab.reports.show import write_show
from digitlab.writing import junk, wild

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


def score_real(predictor: Predictor, folder: Path, failures: Path | None) -> dict:
    """Accuracy per pipeline over the folder, per source and per kind; misreads drawn if asked."""
    items = load_labelled(folder)
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


def score_junk(predictor: Predictor, count: int, seed: int) -> dict[str, dict]:
    """How often pictures with no digit (writing.junk: slabs of paper, frames, ruled lines,
    blots, specks, squared paper) come back as a digit at the default confidence, per kind."""
    rng = np.random.default_rng([seed, 6_700_417])
    pictures = [junk.junk_picture(rng, junk.KINDS[i % len(junk.KINDS)]) for i in range(count)]
    readings = predictor.read_digits([p for p, _ in pictures], "robust")
    by_kind: dict[str, list[bool]] = defaultdict(list)
    for (_, kind), reading in zip(pictures, readings, strict=True):
        by_kind[kind].append(reading.digit is not None)
    by_kind["all"] = [r.digit is not None for r in readings]
    return {kind: {"read_as_digit": sum(hits) / len(hits), "n": len(hits)}
            for kind, hits in by_kind.items()}


def format_table(title: str, rows: dict[str, dict[str, dict]]) -> str:
    """A text table: a row per condition (or group), a column per pipeline."""
    lines = [f"\n{title:<44}{'n':>5}" + "".join(f"{p:>9}" for p in PIPELINES) + f"{'unsure':>8}"]
    for name, scores in rows.items():
        n = next(iter(scores.values()))["n"]
        cells = "".join(f"{100 * scores[p]['accuracy']:>8.1f}%" if p in scores else f"{'—':>9}"
                        for p in PIPELINES)
        unsure = scores.get("robust", {}).get("below_threshold", "")
        lines.append(f"{name:<44}{n:>5}{cells}{unsure:>8}")
    return "\n".join(lines)


def score_rendered(predictor: Predictor, images: torch.Tensor, labels: torch.Tensor,
                   per_condition: int, seed: int, conditions: Sequence[str] | None = None,
                   save: Path | None = None) -> dict[str, dict]:
    """Render `per_condition` test digits (or numbers) per condition and score each pipeline."""
    samples = []
    for condition in conditions or (*wild.CONDITIONS, *wild.NUMBERS):
        samples += wild.render_condition(condition, images, labels, per_condition, seed)
    if save is not None:
        wild.save_wild_set(samples, save)
    by_condition: dict[str, list[wild.WildSample]] = defaultdict(list)
    for sample in samples:
        by_condition[sample.condition].append(sample)
    results: dict[str, dict] = {}
    for condition, group in by_condition.items():
        if condition in wild.NUMBERS:
            results[condition] = {"robust": score_numbers(predictor, group)}
        else:
            results[condition] = {p: score_digits(predictor, group, p) for p in PIPELINES}
    return results
