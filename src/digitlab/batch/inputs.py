"""`classify`'s inputs: files, folders (recursively if asked), globs and lists of paths → the
image files to read, in a stable order. Light: worker processes import it without torch.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from digitlab.reading.images import IMAGE_SUFFIXES


@dataclass(frozen=True)
class InputProblem:
    """An input that yields no file to read (a folder that cannot be listed), kept in its place
    so that its error is reported in order."""

    path: str
    error: str


Input = str | InputProblem  # an image file's path, or why an input gave none


def iter_inputs(inputs: Iterable[str], recursive: bool = False) -> Iterator[Input]:
    """Files as given, folders as their images (sorted by name; with `recursive`, their
    sub-folders' too, depth first), globs expanded (sorted; `**` descends).

    Lazy: a long list of paths (read from a file or stdin) is expanded as it is read. Something
    that matches nothing stays as it is, so its error ("no such file") is reported in order.
    """
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            yield from _folder_images(path, recursive)
        elif not path.exists() and glob.has_magic(item):
            yield from sorted(glob.glob(item, recursive=True)) or [item]
        else:
            yield item


def _folder_images(folder: Path, recursive: bool) -> Iterator[Input]:
    try:
        with os.scandir(folder) as scan:
            # symlinked folders are not followed (as `find`): a link to a parent would never end
            entries = sorted((e.name, e.is_dir(follow_symlinks=False), e.is_file()) for e in scan)
    except OSError as e:
        yield InputProblem(str(folder), f"{folder}: cannot list this folder ({e.strerror or e})")
        return
    for name, is_dir, is_file in entries:
        if is_file and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES:
            yield str(folder / name)
        elif is_dir and recursive:
            yield from _folder_images(folder / name, recursive)


def read_path_list(stream: IO[str]) -> Iterator[str]:
    """The paths in a list, one a line (as `find` prints them): blank lines skipped, read lazily."""
    for line in stream:
        path = line.rstrip("\r\n")
        if path.strip():
            yield path
