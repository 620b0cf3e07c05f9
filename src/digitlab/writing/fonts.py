"""Font discovery: the installed TrueType/OpenType fonts whose 0-9 are real digits."""

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

    found: dict[str, Path] = {}
    for folder in (*FONT_DIRS, Path(matplotlib.get_data_path()) / "fonts" / "ttf"):
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                if path.suffix.lower() in (".ttf", ".otf") and path.name not in found:
                    found[path.name] = path
    fonts = tuple(found[name] for name in sorted(found) if _font_has_digits(found[name]))
    logger.info("%d of %d fonts have usable digits", len(fonts), len(found))
    return fonts
