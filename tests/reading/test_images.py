"""Image loading: every format, EXIF, bytes and streams, and one-line errors for bad input."""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

import digitlab.reading.images
import digitlab.reading.robust.centring
from digitlab.errors import ImageError, ImageNotFound, ImageTooLarge, UnreadableImage, UnsupportedImage
from digitlab.reading.images import load_image
from digitlab.reading.pipelines import preprocess
from tests.drawing import digit_image, similarity


def test_the_loading_names_have_one_home():
    for name in ("IMAGE_SUFFIXES", "MAX_PIXELS", "ImageSource", "load_image"):
        assert hasattr(digitlab.reading.images, name) and not hasattr(digitlab.reading.robust.centring, name)


# ---------------------------------------------------------------- loading: every format


def _rgba_canvas(path: Path, image: Image.Image) -> None:
    """A drawing app's export: transparent black canvas, opaque black strokes."""
    alpha = ImageOps.invert(image)
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    layer.putalpha(alpha)
    layer.save(path)


def _white_on_transparent(path: Path, image: Image.Image) -> None:
    layer = Image.new("RGBA", image.size, (255, 255, 255, 0))
    layer.putalpha(ImageOps.invert(image))
    layer.save(path)


def _palette_transparent(path: Path, image: Image.Image) -> None:
    pal = image.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    background = pal.getpixel((0, 0))
    pal.save(path, transparency=background)


def _sixteen_bit(path: Path, image: Image.Image) -> None:
    Image.fromarray(np.asarray(image).astype(np.uint16) * 257).save(path)
    assert Image.open(path).mode == "I;16"


def _cmyk_jpeg(path: Path, image: Image.Image) -> None:
    image.convert("RGB").convert("CMYK").save(path, quality=95)
    assert Image.open(path).mode == "CMYK"


def _gif_first_frame(path: Path, image: Image.Image) -> None:
    other = digit_image("1", size=image.size[0])
    image.save(path, save_all=True, append_images=[other], duration=100, loop=0)
    assert getattr(Image.open(path), "n_frames", 1) == 2


WRITERS: dict[str, tuple[str, Callable[[Path, Image.Image], None]]] = {
    "png-L": (".png", lambda p, im: im.save(p)),
    "png-RGB": (".png", lambda p, im: im.convert("RGB").save(p)),
    "png-1bit": (".png", lambda p, im: im.point(lambda v: 255 if v > 127 else 0).convert("1").save(p)),
    "png-LA": (".png", lambda p, im: im.convert("LA").save(p)),
    "png-RGBA-transparent": (".png", _rgba_canvas),
    "png-RGBA-white-strokes": (".png", _white_on_transparent),
    "png-P": (".png", lambda p, im: im.convert("P", palette=Image.Palette.ADAPTIVE).save(p)),
    "png-P-transparency": (".png", _palette_transparent),
    "png-I16": (".png", _sixteen_bit),
    "png-I16-12bit": (".png", lambda p, im: Image.fromarray(np.asarray(im).astype(np.uint16) * 16).save(p)),
    "tiff-float": (".tif", lambda p, im: Image.fromarray(np.asarray(im, np.float32) / 255).save(p)),
    "jpeg": (".jpg", lambda p, im: im.convert("RGB").save(p, quality=90)),
    "jpeg-CMYK": (".jpg", _cmyk_jpeg),
    "gif": (".gif", _gif_first_frame),
    "tiff": (".tif", lambda p, im: im.save(p)),
    "webp": (".webp", lambda p, im: im.convert("RGB").save(p, lossless=True)),
    "bmp": (".bmp", lambda p, im: im.save(p)),
}


@pytest.mark.parametrize("fmt", WRITERS)
def test_every_format_loads_and_gives_the_same_digit(fmt, tmp_path):
    image = digit_image("7", size=120)
    suffix, write = WRITERS[fmt]
    path = tmp_path / f"digit{suffix}"
    write(path, image)
    loaded = load_image(path)
    prepared = preprocess(loaded)
    assert loaded.size == (120, 120)
    assert prepared.has_ink and prepared.steps["pipeline"] == "robust"
    assert similarity(prepared.pixels, preprocess(image).pixels) > 0.95


def test_exif_orientation_6_is_applied(tmp_path):
    raw = Image.new("L", (60, 30), 255)
    raw.paste(0, (0, 0, 30, 30))  # stored: dark left half
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    raw.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    upright = np.asarray(load_image(tmp_path / "rotated.jpg"))
    assert upright.shape == (60, 30)  # rows, cols: now portrait
    assert upright[:30].mean() < 40 < 215 < upright[30:].mean()  # the left half went to the top


def test_bytes_and_streams_load_like_files(tmp_path):
    digit_image().save(tmp_path / "d.png")
    data = (tmp_path / "d.png").read_bytes()
    for source in (data, bytearray(data), io.BytesIO(data)):
        assert load_image(source).size == (200, 200)
    with open(tmp_path / "d.png", "rb") as stream:
        assert load_image(stream).size == (200, 200)
    with pytest.raises(ImageError, match=r"^upload\.png: not an image"):
        load_image(b"hello", name="upload.png")


# ---------------------------------------------------------------- loading: errors


def _png(width: int, height: int) -> bytes:
    """A PNG whose header declares width×height but whose pixel data is a stub."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grayscale
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


def _truncated(path: Path) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (200, 200), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])


BROKEN: dict[str, tuple[Callable[[Path], object], str, type[ImageError]]] = {
    "text": (lambda p: p.write_text("this is text, not pixels"), "not an image", UnsupportedImage),
    "empty": (lambda p: p.write_bytes(b""), "not an image", UnsupportedImage),
    "truncated": (_truncated, "not a readable image", UnreadableImage),
    "huge": (lambda p: p.write_bytes(_png(10_000, 10_000)), "too large", ImageTooLarge),
    "bomb": (lambda p: p.write_bytes(_png(20_000, 20_000)), "too large", ImageTooLarge),  # PIL's own
    "missing": (lambda p: None, "no such file", ImageNotFound),
    "fifo": (lambda p: os.mkfifo(p), "not a regular file (a FIFO", ImageNotFound),  # never opened: no hang
    "link loop": (lambda p: (p.with_name("b").symlink_to(p), p.symlink_to(p.with_name("b"))),
                  "Too many levels of symbolic links", ImageNotFound),
    "broken link": (lambda p: p.symlink_to(p.with_name("gone.png")), "a broken symbolic link", ImageNotFound),
    "folder": (lambda p: p.mkdir(), "is a folder", ImageNotFound),
}


@pytest.mark.parametrize("case", BROKEN)
def test_unreadable_images_raise_one_line_image_errors_of_a_type_per_cause(case, tmp_path):
    make, expected, kind = BROKEN[case]
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(kind) as caught:
        load_image(path)
    message = str(caught.value)
    assert expected in message and str(path) in message and "\n" not in message


def test_huge_images_are_refused_from_the_header_alone():
    # The stub pixel data would fail to decode: "too large" proves nothing was decoded.
    for data in (_png(10_000, 10_000), _png(7_000, 6_000)):
        with pytest.raises(ImageError, match=r"^big\.png: image too large"):
            load_image(data, name="big.png")


def _photo_jpeg(width: int, height: int) -> bytes:
    """A big 'photo': a dark 7 on grey paper, as a phone would save it."""
    side = min(width, height) // 2
    page = Image.new("L", (width, height), 200)
    page.paste(digit_image("7", size=side, paper=200, ink=20), (width // 4, height // 4))
    out = io.BytesIO()
    page.convert("RGB").save(out, format="JPEG", quality=80)
    return out.getvalue()


def test_big_jpeg_photos_are_decoded_reduced_within_the_decoded_size_limit():
    data = _photo_jpeg(6000, 4000)  # 24 MP: 96 MB decoded whole, as Pillow stores RGB
    image = load_image(data, name="phone.jpg", max_decoded_bytes=64 << 20)
    assert max(image.size) >= digitlab.reading.images.JPEG_DRAFT_SIDE
    assert image.size[0] * image.size[1] * 4 <= 64 << 20
    assert image.size[0] / image.size[1] == pytest.approx(1.5, rel=0.01)
    assert preprocess(image).has_ink


def test_the_decoded_size_limit_refuses_from_the_header():
    data = bytearray(_png(7280, 5456))
    data[24:26] = bytes([16, 6])  # IHDR: 16-bit RGBA, 39.7 MP (Pillow keeps it as 8-bit RGBA)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    with pytest.raises(ImageTooLarge, match=r"^bomb\.png: image too large to decode"):
        load_image(bytes(data), name="bomb.png", max_decoded_bytes=64 << 20)
