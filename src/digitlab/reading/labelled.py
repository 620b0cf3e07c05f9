"""Folders of real labelled digits: the pictures `digitlab bench wild --real DIR` scores and
`digitlab train --val-real DIR` judges each epoch by.

A labelled picture's file name starts with its digit and `_` (`7_my-seven.png`); an optional
labels.csv with `file`, `source` and `kind` columns says where each came from and what it is
(a drawing, a photo, a scan), so results can be grouped.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import NamedTuple

from digitlab.errors import ConfigError
from digitlab.reading.images import IMAGE_SUFFIXES

LABELS_CSV = "labels.csv"


class LabelledImage(NamedTuple):
    """One labelled picture: its file, its digit ("0"-"9"), and labels.csv's source and kind
    ("?" where labels.csv does not name them)."""

    path: Path
    label: str
    source: str
    kind: str


def load_labelled(folder: Path) -> list[LabelledImage]:
    """The labelled pictures in `folder` (names "<digit>_..."), sorted by name; ConfigError
    when `folder` is not a folder."""
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder of labelled digits")
    meta: dict[str, dict[str, str]] = {}
    if (folder / LABELS_CSV).is_file():
        with open(folder / LABELS_CSV, newline="") as f:
            meta = {row["file"]: row for row in csv.DictReader(f)}
    found = []
    for path in sorted(folder.iterdir()):
        label = path.name.split("_", 1)[0]
        if path.suffix.lower() in IMAGE_SUFFIXES and "_" in path.name and label.isdigit():
            row = meta.get(path.name, {})
            found.append(LabelledImage(path, label, row.get("source", "?"), row.get("kind", "?")))
    return found
