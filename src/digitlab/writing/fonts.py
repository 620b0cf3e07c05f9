"""Font discovery: the installed TrueType/OpenType fonts whose 0-9 are real digits.

Typeset fonts (`digit_fonts`) and handwriting fonts (`handwriting_fonts`, from Debian's
fonts-* packages that imitate a pen) are kept apart, so that installing the handwriting
packages changes neither the printed digits nor the models trained on them.
"""

from __future__ import annotations

import functools
import logging
import re
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

logger = logging.getLogger(__name__)

FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"),
             Path.home() / ".fonts", Path.home() / ".local/share/fonts")
_DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_GENERIC_GLYPH = re.compile(r"(glyph|gid|g|cid|uni003|u003)\d+", re.IGNORECASE)
# The folders Debian's handwriting font packages install into (package in the comment).
HANDWRITING_FOLDERS = (
    "fifthhorseman",  # fonts-dkg-handwriting
    "breip",  # fonts-breip
    "bwht",  # fonts-bwht
    "klee",  # fonts-klee
    "rufscript",  # fonts-rufscript
    "sjfonts",  # fonts-sjfonts
    "yusei-magic",  # fonts-yusei-magic
    "humor-sans",  # fonts-humor-sans
)
HANDWRITING_PACKAGES = ("fonts-dkg-handwriting", "fonts-breip", "fonts-bwht", "fonts-klee",
                        "fonts-rufscript", "fonts-sjfonts", "fonts-yusei-magic", "fonts-humor-sans")
# fonts-femkeklaver is handwriting too, but drawn as hollow outlines: no pen writes that.


def _font_has_digits(path: Path) -> bool:
    """Whether a font maps 0-9 to real digit glyphs that render as ten different shapes."""
    from fontTools.ttLib import TTFont  # matplotlib's own dependency; slow to import

    try:
        with TTFont(path, lazy=True, fontNumber=0) as font:
            cmap = font.getBestCmap() or {}
        # symbol fonts (cmsy10, cmex10) put arrows and brackets at the digits' code points
        for digit, name in enumerate(cmap.get(0x30 + d) for d in range(10)):
            if name is None or not (
                name.lower().startswith(_DIGIT_NAMES[digit]) or _GENERIC_GLYPH.fullmatch(name)
            ):
                return False
        pil_font = ImageFont.truetype(str(path), 40)
        shapes = set()
        for digit in range(10):
            image = Image.new("L", (80, 80), 0)
            ImageDraw.Draw(image).text((10, 10), str(digit), font=pil_font, fill=255)
            if image.getbbox() is None:
                return False
            shapes.add(image.tobytes())
        return len(shapes) == 10  # a last-resort font draws one box for every digit
    except Exception as e:  # noqa: BLE001 - a broken font file is skipped, whatever it raises
        logger.debug("skipping font %s: %s", path, e)
        return False


@functools.cache
def digit_fonts() -> tuple[Path, ...]:
    """TrueType/OpenType fonts with usable digits: system folders, then matplotlib's own."""
    import matplotlib

    found = _font_files((*FONT_DIRS, Path(matplotlib.get_data_path()) / "fonts" / "ttf"))
    typeset = {name: path for name, path in found.items() if not _is_handwriting(path)}
    fonts = tuple(typeset[name] for name in sorted(typeset) if _font_has_digits(typeset[name]))
    logger.info("%d of %d typeset fonts have usable digits", len(fonts), len(typeset))
    return fonts


@functools.cache
def handwriting_fonts() -> tuple[Path, ...]:
    """Installed handwriting fonts (HANDWRITING_PACKAGES) whose 0-9 are ten real glyphs."""
    found = _font_files(FONT_DIRS)
    fonts = tuple(found[name] for name in sorted(found)
                  if found[name].parent.name in HANDWRITING_FOLDERS and _font_has_digits(found[name]))
    logger.info("%d handwriting fonts have usable digits", len(fonts))
    return fonts


def _is_handwriting(path: Path) -> bool:
    """From a handwriting package (hollow outlines included): not a typeset font."""
    return path.parent.name in HANDWRITING_FOLDERS or path.parent.name == "femkeklaver"


def _font_files(folders: tuple[Path, ...]) -> dict[str, Path]:
    """Font files by name (the first folder that has a name wins)."""
    found: dict[str, Path] = {}
    for folder in folders:
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                if path.suffix.lower() in (".ttf", ".otf") and path.name not in found:
                    found[path.name] = path
    return found
