"""The in-the-wild test set: reproducible, and each condition looks the way it claims."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage

from digitlab.errors import ConfigError
from digitlab.writing import wild
from digitlab.writing.fonts import HANDWRITING_PACKAGES, digit_fonts, handwriting_fonts
from digitlab.writing.pages import CANVAS_SIZES

ALL = (*wild.CONDITIONS, *wild.NUMBERS)
needs_handwriting_fonts = pytest.mark.skipif(
    not handwriting_fonts(), reason="no handwriting fonts (make fonts: apt-get install "
    + " ".join(HANDWRITING_PACKAGES) + ")")


def draw_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """Five MNIST-like 28×28 digits (0, 1, 7, 4, 8): bright strokes on black, soft edges."""
    strokes = {
        0: [("ellipse", (8, 5, 20, 23))],
        1: [("line", (14, 4, 14, 24))],
        7: [("line", (8, 5, 20, 5)), ("line", (20, 5, 12, 24))],
        4: [("line", (17, 4, 17, 24)), ("line", (17, 4, 8, 16)), ("line", (8, 16, 21, 16))],
        8: [("ellipse", (9, 4, 19, 13)), ("ellipse", (8, 13, 20, 24))],
    }
    images = []
    for shapes in strokes.values():
        image = Image.new("L", (28, 28), 0)
        draw = ImageDraw.Draw(image)
        for kind, box in shapes:
            if kind == "line":
                draw.line(box, fill=255, width=3)
            else:
                draw.ellipse(box, outline=255, width=3)
        images.append(np.asarray(image.filter(ImageFilter.GaussianBlur(0.5))))
    return torch.from_numpy(np.stack(images)), torch.tensor(list(strokes), dtype=torch.int64)


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    return draw_digits()


def gray(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.float32)


def ink_mask(image: Image.Image) -> np.ndarray:
    """Pixels that differ from the (uniform) background, read off the corners."""
    if image.mode == "RGBA":
        return np.asarray(image)[..., 3] > 0
    g = gray(image)
    return g != np.median([g[0, 0], g[0, -1], g[-1, 0], g[-1, -1]])


def ink_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of columns holding ink."""
    cols = np.concatenate([[0], mask.any(axis=0).astype(int), [0]])
    edges = np.flatnonzero(np.diff(cols))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


@pytest.mark.parametrize("condition", [
    pytest.param(c, marks=needs_handwriting_fonts) if c == "handwriting-fonts" else c for c in ALL])
def test_same_seed_same_pixels_other_seed_other_pixels(digits, condition):
    first = wild.render_condition(condition, *digits, count=2, seed=3)
    again = wild.render_condition(condition, *digits, count=2, seed=3)
    other = wild.render_condition(condition, *digits, count=2, seed=4)
    assert [s.label for s in first] == [s.label for s in again]
    assert all(np.array_equal(np.asarray(a.image), np.asarray(b.image))
               for a, b in zip(first, again, strict=True))
    assert not all(a.image.size == b.image.size
                   and np.array_equal(np.asarray(a.image), np.asarray(b.image))
                   for a, b in zip(first, other, strict=True))
    assert all(s.condition == condition for s in first)


def test_sample_does_not_depend_on_count(digits):
    few = wild.render_condition("paper", *digits, count=2, seed=1)
    more = wild.render_condition("paper", *digits, count=3, seed=1)
    assert all(np.array_equal(np.asarray(a.image), np.asarray(b.image))
               for a, b in zip(few, more, strict=False))


def test_canvas_sizes_thick_strokes_and_height(digits):
    samples = wild.render_condition("canvas", *digits, count=12, seed=0)
    assert {s.image.mode for s in samples} == {"RGB", "RGBA"}
    for s in samples:
        assert s.image.size in CANVAS_SIZES
        ink = ink_mask(s.image)
        rows = np.flatnonzero(ink.any(axis=1))
        assert 0.2 <= (rows[-1] - rows[0] + 1) / s.image.height <= 0.9
        assert ndimage.distance_transform_edt(ink).max() >= 3  # pen at least ~6 px wide
        if s.image.mode == "RGBA":
            assert np.asarray(s.image)[0, 0, 3] == 0  # transparent background
        assert s.label in {"0", "1", "4", "7", "8"}


def test_paper_dark_ink_on_light_paper(digits):
    for s in wild.render_condition("paper", *digits, count=6, seed=0):
        g = gray(s.image)
        assert s.image.mode == "RGB"
        assert np.median(g) > 230
        assert g.min() < 90


def test_photo_is_decoded_jpeg_with_uneven_grey_light(digits):
    for s in wild.render_condition("photo", *digits, count=4, seed=0):
        assert s.image.format == "JPEG" and s.image.mode == "RGB"
        g = gray(s.image)
        paper = g[g > np.median(g) - 40]
        assert np.median(paper) < 235  # grey, not white
        assert np.percentile(paper, 95) - np.percentile(paper, 5) > 25


def test_thin_pen_large_canvas_thin_strokes(digits):
    for s in wild.render_condition("thin-pen", *digits, count=4, seed=0):
        assert min(s.image.size) >= 800
        g = gray(s.image)
        ink = g < (np.median(g) + g.min()) / 2  # at least half covered
        depth = ndimage.distance_transform_edt(ink)[ink]
        assert np.percentile(depth, 99) <= 2.0  # strokes about 1-4 px across, bar junctions


def test_printed_covers_all_digits_in_several_fonts(digits):
    samples = wild.render_condition("printed", *digits, count=20, seed=0)
    assert sorted(s.label for s in samples) == sorted("0123456789" * 2)
    assert len({s.source for s in samples}) >= 2
    for s in samples:
        assert ink_mask(s.image).any()


def test_digit_fonts_skip_symbol_fonts():
    names = {path.name for path in digit_fonts()}
    assert len(names) >= 2
    for bad in ("cmex10.ttf", "cmsy10.ttf", "STIXSizOneSymReg.ttf", "LastResortHE-Regular.ttf",
                "DejaVuSansDisplay.ttf"):
        assert bad not in names


def test_numbers_have_separate_digits(digits):
    samples = wild.render_numbers(*digits, count=8, seed=0)
    allowed = {str(int(v)) for v in digits[1]}
    for s in samples:
        assert 2 <= len(s.label) <= 8 and set(s.label) <= allowed
        assert s.condition == wild.NUMBER and s.touching is False
        runs = ink_runs(ink_mask(s.image))
        assert len(runs) == len(s.label)
        assert all(b[0] - a[1] >= 3 for a, b in zip(runs, runs[1:], strict=False))
    assert len({len(s.label) for s in samples}) > 1


def test_numbers_length_bounds(digits):
    for s in wild.render_numbers(*digits, count=3, seed=5, min_digits=3, max_digits=3):
        assert len(s.label) == 3
    with pytest.raises(ConfigError):
        wild.render_numbers(*digits, count=1, seed=0, min_digits=4, max_digits=2)


@needs_handwriting_fonts
def test_make_wild_set_covers_every_condition(digits):
    samples = wild.make_wild_set(*digits, per_condition=1, seed=0)
    assert [s.condition for s in samples] == list(ALL)


def test_bad_input_is_refused(digits):
    with pytest.raises(ConfigError, match="unknown condition"):
        wild.render_condition("crayon", *digits, count=1, seed=0)
    with pytest.raises(ConfigError):
        wild.render_condition("paper", digits[0].float(), digits[1], count=1, seed=0)


@needs_handwriting_fonts
def test_save_wild_set_round_trips(digits, tmp_path: Path):
    samples = wild.make_wild_set(*digits, per_condition=1, seed=2)
    manifest = wild.save_wild_set(samples, tmp_path / "wild")
    entries = json.loads(manifest.read_text())["samples"]
    assert [(e["label"], e["condition"]) for e in entries] == [
        (s.label, s.condition) for s in samples
    ]
    assert all((tmp_path / "wild" / e["file"]).is_file() for e in entries)
    loaded = wild.load_wild_set(tmp_path / "wild")
    for before, after in zip(samples, loaded, strict=True):
        assert (after.label, after.condition, after.source) == (
            before.label, before.condition, before.source
        )
        assert after.image.mode == before.image.mode
        assert np.array_equal(np.asarray(after.image), np.asarray(before.image))


# ---------------------------------------------------------------- the harder conditions


def test_continental_uses_ones_fours_and_sevens_and_changes_them(digits):
    from digitlab.writing.wild_hard import add_crossbar, add_flag

    samples = wild.render_condition("continental", *digits, count=9, seed=0)
    assert {s.label for s in samples} == {"1", "4", "7"}
    images, labels = digits
    seven, one = images[labels == 7][0].numpy(), images[labels == 1][0].numpy()
    rng = np.random.default_rng(0)
    crossed, flagged = add_crossbar(seven, rng), add_flag(one, rng)
    assert (crossed >= seven).all() and (crossed > 100).sum() > (seven > 100).sum() + 4
    new = (flagged > 100) & (one <= 100)
    assert new.any() and np.flatnonzero(new.any(axis=0)).min() < np.flatnonzero((one > 100).any(axis=0)).min()


def test_low_res_is_small_soft_dark_on_light_and_fills_its_frame(digits):
    for s in wild.render_condition("low-res", *digits, count=8, seed=0):
        assert 28 <= max(s.image.size) <= 140
        g = gray(s.image)
        ink = g < (g.max() + g.min()) / 2
        rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
        assert max((rows[-1] - rows[0] + 1) / g.shape[0], (cols[-1] - cols[0] + 1) / g.shape[1]) > 0.7
        assert len(np.unique(g)) > 8  # grey levels kept


def test_shadow_photos_have_a_hard_edge(digits):
    for s in wild.render_condition("shadow", *digits, count=6, seed=0):
        assert s.image.format == "JPEG"
        g = ndimage.gaussian_filter(gray(s.image), 3)
        light, dark = np.percentile(g, 90), np.percentile(g, 5)
        assert dark < 0.8 * light  # a shadow or table darker than the paper by a fifth at least


def test_marker_strokes_are_thick_and_fill_the_frame(digits):
    for s in wild.render_condition("marker", *digits, count=6, seed=0):
        g = gray(s.image)
        ink = g < (np.median(g) + g.min()) / 2
        rows = np.flatnonzero(ink.any(axis=1))
        height = rows[-1] - rows[0] + 1
        assert height > 0.75 * g.shape[0]
        assert 2 * ndimage.distance_transform_edt(ink).max() > height / 12


@needs_handwriting_fonts
def test_handwriting_fonts_cover_every_digit_in_several_fonts(digits):
    samples = wild.render_condition("handwriting-fonts", *digits, count=20, seed=0)
    assert sorted(s.label for s in samples) == sorted("0123456789" * 2)
    assert len({s.source for s in samples}) >= 3
    assert {s.source for s in samples} <= {p.name for p in handwriting_fonts()}
    assert not {s.source for s in samples} & {p.name for p in digit_fonts()}


def test_small_numbers_are_two_or_three_digits_on_a_small_canvas(digits):
    samples = wild.render_condition(wild.SMALL_NUMBER, *digits, count=20, seed=0)
    for s in samples:
        assert 2 <= len(s.label) <= 3 and 28 <= s.image.height <= 64 and s.image.width >= 28
    assert any(s.touching for s in samples) and not all(s.touching for s in samples)
