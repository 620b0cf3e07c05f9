"""Synthetic training digits: printed digits typeset in the machine's fonts, MNIST training
digits re-drawn with an even pen, and digits in the styles and pictures MNIST lacks.

MNIST has only handwriting, so a model trained on it alone misreads typeset digits (a serif 1,
an open 4). And MNIST's writers pressed harder on some strokes than others, while a mouse, a
touch screen or a ball-point pen draws every stroke the same width; a model that never saw that
misreads more of them. Nor did MNIST's American writers cross their sevens or flag their ones,
and none of its digits was scanned at 12 px, written in marker or photographed beside a table's
edge: `styled_digits` renders training digits those ways (digitlab.writing.wild_hard, the same pieces as
the benchmark's conditions, from *training* digits) and in handwriting fonts. Recipes can add
all three to the training split. Typeset digits go through the
same normalisation as user images (crop, 20 px, centre of mass); re-drawn ones through the whole
preprocessing a user's image gets, so they look exactly like what the model sees in use.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import logging
import os
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from digitlab.data.datasets import NOT_A_DIGIT
from digitlab.errors import OutputError
from digitlab.files import atomic_path
from digitlab.reading.robust.centring import normalise_digit
from digitlab.reading.robust.views import preprocess_robust
from digitlab.writing import junk, wild_hard
from digitlab.writing.fonts import digit_fonts, handwriting_fonts
from digitlab.writing.strokes import write_with_pen

logger = logging.getLogger(__name__)


def printed_digits(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` typeset digits (uint8 N×28×28, white on black) and their labels, reproducibly."""
    fonts = digit_fonts()
    if not fonts or count <= 0:
        return torch.zeros(0, 28, 28, dtype=torch.uint8), torch.zeros(0, dtype=torch.long)
    rng = np.random.default_rng([seed, 7919])
    images = torch.empty(count, 28, 28, dtype=torch.uint8)
    labels = torch.arange(count) % 10
    for i in range(count):
        font = ImageFont.truetype(str(fonts[int(rng.integers(len(fonts)))]), int(rng.integers(40, 90)))
        canvas = Image.new("L", (160, 160), 0)
        ImageDraw.Draw(canvas).text((30, 20), str(int(labels[i])), font=font, fill=255)
        canvas = canvas.rotate(float(rng.uniform(-6, 6)), resample=Image.Resampling.BILINEAR)
        pixels = normalise_digit(np.asarray(canvas, dtype=np.float32) / 255.0)
        images[i] = (pixels * 255).round().clamp(0, 255).to(torch.uint8)
    logger.info("typeset %d printed digits from %d fonts", count, len(fonts))
    return images, labels


_CHUNK = 500


def redraw_one(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One MNIST digit (uint8 28×28) re-drawn the way users write, as the model would see it.

    Ink 28-120 px tall, a pen either a fixed 3-20 px (mouse, touch) or 4-12% of the height
    (pen on paper), tilted and slanted a little, white on black, then preprocessed.
    """
    height = rng.uniform(28, 120)
    pen = rng.uniform(3, 20) if rng.random() < 0.5 else height * rng.uniform(0.04, 0.12)
    mask = write_with_pen(digit, rng, height, pen, 8, 0.25)
    margin = int(rng.integers(4, 40))
    page = np.pad(np.round(mask * 255).astype(np.uint8), margin)
    return np.asarray(preprocess_robust(Image.fromarray(page)).pixels)


def _redraw_chunk(seed: int, start: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    assert _POOL_DIGITS is not None
    digits, labels = (a[start : start + count] for a in _POOL_DIGITS)
    return (np.stack([redraw_one(d, np.random.default_rng([seed, 104_729, start + i]))
                      for i, d in enumerate(digits)]), labels)


def redrawn_digits(
    images: torch.Tensor, labels: torch.Tensor, count: int, seed: int, progress: bool = False,
    cache: Path | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` of the (training) `images` picked at random and re-drawn with an even pen
    (uint8 N×28×28, white on black, preprocessed) with their labels; the same for the same seed.

    About 13 ms a digit, spread over the machine's cores; kept in `cache` (see _in_chunks).
    """
    if count <= 0:
        return _none()
    picks = torch.from_numpy(np.random.default_rng([seed, 104_723]).choice(len(images), count))
    parts = _in_chunks(_redraw_chunk, count, seed, "re-drawing digits", progress,
                       (images[picks].numpy(), labels[picks].numpy()), cache)
    made = _as_training(parts)
    logger.info("re-drew %d training digits with an even pen", count)
    return made


STYLES = ("continental", "low-res", "marker", "shadow", "handwriting-fonts")
STYLE_SHARES = (0.4, 0.2, 0.1, 0.05, 0.25)


def styled_one(
    images: np.ndarray, labels: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, int] | None:
    """One digit in a style MNIST lacks, as the model would see it (one of robust's views),
    and its label; None when preprocessing finds no digit in the picture."""
    style = STYLES[int(rng.choice(len(STYLES), p=STYLE_SHARES))]
    fonts = handwriting_fonts()
    if style == "handwriting-fonts" and fonts:
        label = int(rng.integers(10))
        image = wild_hard.font_on_paper(rng, fonts[int(rng.integers(len(fonts)))], label)
    else:
        if style == "handwriting-fonts":  # not installed: a continental digit instead
            style = "continental"
        pool = np.flatnonzero(np.isin(labels, wild_hard.CONTINENTAL_DIGITS)) if style == "continental" \
            else np.arange(len(labels))
        k = int(pool[int(rng.integers(len(pool)))])
        label, digit = int(labels[k]), images[k]
        if style == "low-res" and label in wild_hard.CONTINENTAL_DIGITS and rng.random() < 0.5:
            digit = wild_hard.european_digit(digit, label, rng)  # cheques, forms: European hands
        render = wild_hard.european_page if style == "continental" else wild_hard.RENDERERS[style]
        image = render(rng, digit, label)
    prepared = preprocess_robust(image)
    if not prepared.has_ink:
        return None
    # The model meets every view the vote may pick (digitlab.reading.robust.views); a shadow's plain views
    # are its edges and shade, never chosen in a vote and no digit to learn from.
    views = [prepared.pixels] + ([] if style == "shadow" else list(prepared.alternatives.values()))
    return np.asarray(views[int(rng.integers(len(views)))]), label


_POOL_DIGITS: tuple[np.ndarray, np.ndarray] | None = None  # each worker's copy of the digits


def _keep_digits(images: np.ndarray, labels: np.ndarray) -> None:
    global _POOL_DIGITS
    _POOL_DIGITS = images, labels
    torch.set_num_threads(1)


def _styled_chunk(seed: int, start: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    assert _POOL_DIGITS is not None
    made = [styled_one(*_POOL_DIGITS, np.random.default_rng([seed, 15_485_863, start + i]))
            for i in range(count)]
    kept = [m for m in made if m is not None]
    return (np.stack([m[0] for m in kept]) if kept else np.zeros((0, 28, 28), np.float32),
            np.array([m[1] for m in kept], dtype=np.int64))


def _in_chunks(job: Any, count: int, seed: int, what: str, progress: bool,
               initargs: tuple[np.ndarray, np.ndarray] | None = None,
               cache: Path | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """`job(seed, start, size)` over chunks of `count` on every core: its (pixels, labels) parts.

    With a `cache` folder each chunk is kept there as a file named by what decides its pixels
    (the job, seed, start and size, the digits it draws from, the fonts and the source of the
    code that renders and preprocesses): a later run with the same seed renders only the
    chunks it has not made before, whatever its count.
    """
    starts = list(range(0, count, _CHUNK))
    sizes = [min(_CHUNK, count - s) for s in starts]
    key = _cache_key(job.__name__, initargs) if cache is not None else ""
    files = [cache / f"{key}-{seed}-{s}-{n}.npz" if cache is not None else None
             for s, n in zip(starts, sizes, strict=True)]
    parts: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for i, file in enumerate(files):
        kept = _kept(file)
        if kept is not None:
            parts[i] = kept
    todo = [i for i in range(len(starts)) if i not in parts]
    if todo:
        workers = min(os.cpu_count() or 1, len(todo))
        pool = ProcessPoolExecutor(workers, initializer=_keep_digits, initargs=initargs) if initargs \
            else ProcessPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(1,))
        with pool, tqdm(total=sum(sizes[i] for i in todo), desc=what, unit="picture",
                        disable=None if progress else True, leave=False) as bar:
            jobs = pool.map(job, [seed] * len(todo), [starts[i] for i in todo], [sizes[i] for i in todo])
            keeping = cache is not None
            for i, part in zip(todo, jobs, strict=True):
                parts[i] = part
                keeping = keeping and _keep(files[i], part)  # one failed write: no more tries
                bar.update(sizes[i])
    return [parts[i] for i in range(len(starts))]


def _kept(file: Path | None) -> tuple[np.ndarray, np.ndarray] | None:
    """A chunk from the cache; None where there is none (or it is damaged: rendered again)."""
    if file is None or not file.is_file():
        return None
    try:
        with np.load(file) as saved:
            return saved["pixels"], saved["labels"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        logger.warning("%s is damaged: rendering its pictures again", file)
        return None


def _keep(file: Path | None, part: tuple[np.ndarray, np.ndarray]) -> bool:
    """Write a chunk into the cache; False (with one warning) where the folder cannot take it."""
    if file is None:
        return False
    try:
        with atomic_path(file) as tmp, open(tmp, "wb") as f:
            np.savez(f, pixels=part[0], labels=part[1])
    except OutputError as e:  # a read-only data folder: training goes on without the cache
        logger.warning("cannot keep rendered pictures: %s", e)
        return False
    return True


@functools.cache
def _code_digest() -> str:
    """The source of every digitlab module this one imports, directly or not (read from the
    import statements, so a module the rendering never uses does not count), and the fonts."""
    root = Path(__file__).resolve().parents[2]  # the folder holding the digitlab package
    digest = hashlib.sha256()
    for path in _imported_sources(Path(__file__).resolve(), root):
        digest.update(path.read_bytes())
    for font in (*digit_fonts(), *handwriting_fonts()):
        digest.update(str(font).encode())
    return digest.hexdigest()


def _imported_sources(start: Path, root: Path) -> list[Path]:
    """`start` and the digitlab source files it imports, transitively, in a stable order."""
    seen, todo = {start}, [start]
    while todo:
        tree = ast.parse(todo.pop().read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module, *(f"{node.module}.{a.name}" for a in node.names)] \
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []
            for name in names:
                if not name.startswith("digitlab."):
                    continue
                base = root.joinpath(*name.split("."))
                for found in (base.with_suffix(".py"), base / "__init__.py"):
                    if found.is_file() and found not in seen:
                        seen.add(found)
                        todo.append(found)
    return sorted(seen)


def _cache_key(job: str, initargs: tuple[np.ndarray, np.ndarray] | None) -> str:
    digest = hashlib.sha256(_code_digest().encode())
    for array in initargs or ():
        digest.update(np.ascontiguousarray(array).tobytes())
    return f"{job.strip('_')}-{digest.hexdigest()[:16]}"


def _as_training(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor]:
    pixels = torch.from_numpy(np.concatenate([p[0] for p in parts]))
    return ((pixels * 255).round().clamp(0, 255).to(torch.uint8),
            torch.from_numpy(np.concatenate([p[1] for p in parts])))


def _none() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros(0, 28, 28, dtype=torch.uint8), torch.zeros(0, dtype=torch.long)


def styled_digits(
    images: torch.Tensor, labels: torch.Tensor, count: int, seed: int, progress: bool = False,
    cache: Path | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """About `count` (training) digits in the styles and pictures MNIST lacks (STYLES), made into
    what the model sees (uint8 N×28×28, white on black) with their labels; the same for the same
    seed. Continental ones, lows-res scans, marker, shadows and table edges come from `images`;
    the rest are typeset in the installed handwriting fonts. About 40 ms a digit, on every core.
    """
    if count <= 0:
        return _none()
    parts = _in_chunks(_styled_chunk, count, seed, "styled digits", progress,
                       (images.numpy(), labels.numpy()), cache)
    made = _as_training(parts)
    logger.info("made %d training digits in styles MNIST lacks", len(made[1]))
    return made


def junk_one(rng: np.random.Generator) -> np.ndarray | None:
    """A picture with no digit (digitlab.writing.junk) as the model would see it, through one of
    robust's views; None when preprocessing finds no ink in it (the reader says so itself)."""
    prepared = preprocess_robust(junk.junk_picture(rng)[0])
    if not prepared.has_ink:
        return None
    views = [prepared.pixels, *prepared.alternatives.values()]
    return np.asarray(views[int(rng.integers(len(views)))])


def _junk_chunk(seed: int, start: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    made = [junk_one(np.random.default_rng([seed, 32_452_843, start + i])) for i in range(count)]
    kept = [m for m in made if m is not None]
    return (np.stack(kept) if kept else np.zeros((0, 28, 28), np.float32),
            np.full(len(kept), NOT_A_DIGIT, dtype=np.int64))


def junk_digits(count: int, seed: int, progress: bool = False,
                cache: Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """About `count` pictures with no digit, as the model sees them (uint8 N×28×28), labelled
    NOT_A_DIGIT; the same for the same seed. About 10 ms a picture, on every core."""
    if count <= 0:
        return _none()
    made = _as_training(_in_chunks(_junk_chunk, count, seed, "pictures with no digit", progress,
                                   cache=cache))
    logger.info("made %d pictures with no digit", len(made[1]))
    return made
