"""Font discovery: extra font folders are searched, and unusable files are skipped quietly."""

from __future__ import annotations

import shutil
from pathlib import Path

import matplotlib
import pytest

from digitlab.writing import fonts

MPL_FONTS = Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@pytest.fixture
def fresh_cache():
    fonts.digit_fonts.cache_clear()
    yield
    fonts.digit_fonts.cache_clear()  # later tests must not see this test's fake folder


def test_font_check_accepts_text_fonts_rejects_symbol_and_broken_files(tmp_path: Path):
    broken = tmp_path / "Broken.ttf"
    broken.write_bytes(b"not a font at all")
    assert fonts._font_has_digits(MPL_FONTS / "DejaVuSans.ttf")
    assert not fonts._font_has_digits(MPL_FONTS / "cmsy10.ttf")  # arrows at 0-9
    assert not fonts._font_has_digits(broken)


def test_digit_fonts_searches_font_dirs(tmp_path: Path, monkeypatch, fresh_cache):
    nested = tmp_path / "nested"
    nested.mkdir()
    shutil.copy(MPL_FONTS / "DejaVuSerif.ttf", nested / "HouseSerif.TTF")
    (tmp_path / "Broken.otf").write_bytes(b"\0" * 64)
    (tmp_path / "notes.txt").write_text("not a font")
    monkeypatch.setattr(fonts, "FONT_DIRS", (tmp_path, tmp_path / "missing"))
    found = fonts.digit_fonts()
    assert nested / "HouseSerif.TTF" in found
    assert all(path.name not in ("Broken.otf", "notes.txt") for path in found)
