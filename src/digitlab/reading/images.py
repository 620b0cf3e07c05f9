"""A file, bytes, stream or array → a PIL image, and a PIL image of any mode → grayscale floats.

`load_image` refuses what is not a safe, readable image with one-line `ImageError`s of a
type per cause (digitlab.errors);
`to_grayscale` copes with every mode PIL decodes to (16-bit, float, palette, transparency).
"""

from __future__ import annotations

import io
import logging
import math
import os
import stat
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np
import torch
from PIL import Image, ImageMode, ImageOps, UnidentifiedImageError

from digitlab.errors import ImageNotFound, ImageTooLarge, UnreadableImage, UnsupportedImage
from digitlab.reading.measures import is_light

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP")  # the only ones opened: never EPS/PS
MAX_PIXELS = 40_000_000  # refuse larger images before decoding them (decompression bombs)
# A JPEG larger than this on its longer side is decoded reduced (1/2, 1/4 or 1/8, in the
# decoder: cheaper than decoding it whole) to no less than this. Preprocessing looks at images
# at 768 px at most, so nothing it sees changes; a 48 MP phone photo then costs ~4 MB, not 190.
JPEG_DRAFT_SIDE = 2048
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights of R, G, B: what PIL's convert("L") uses
ALPHA = 3  # the index of RGBA's alpha band
MIN_BITS = 8  # a high-bit-depth picture's full scale is at least 8-bit's

ImageSource = str | os.PathLike[str] | bytes | bytearray | BinaryIO  # what load_image decodes
ImageInput = ImageSource | Image.Image | np.ndarray | torch.Tensor  # what the Predictor reads
ACCEPTED = ("a path, bytes, a binary file, a PIL image, or a numpy array or torch tensor of pixels "
            "(H×W or 1×H×W; H×W×3/4 arrays as RGB/RGBA; uint8 0-255 or floats in [0, 1])")


def to_image(source: ImageInput, name: str | None = None) -> Image.Image:
    """Any input the Predictor reads → a PIL image: PIL images as they are, arrays and tensors
    converted (`from_array`), paths, bytes and binary files decoded by `load_image`. Anything
    else is a TypeError naming what is accepted."""
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, (np.ndarray, torch.Tensor)):
        array = as_array(source)
        if array.ndim == 3 and array.shape[0] == 1:  # 1×H×W, torchvision's one image
            array = array[0]
        elif array.ndim == 3 and array.shape[2] not in (3, 4):
            raise UnsupportedImage(f"one image must be H×W, 1×H×W or H×W×3/4, not "
                                   f"{'×'.join(map(str, array.shape))}; read_digits() reads a batch")
        return from_array(array)
    if isinstance(source, (str, os.PathLike, bytes, bytearray)) or hasattr(source, "read"):
        return load_image(source, name)
    raise TypeError(f"cannot read an image from {type(source).__name__}: give {ACCEPTED}")


def to_images(source: ImageInput | Sequence[ImageInput]) -> list[Image.Image]:
    """A batch → PIL images: a sequence of inputs (each as `to_image`), or one array or tensor
    of N×H×W or N×1×H×W pixels (an H×W one is one image)."""
    if isinstance(source, (np.ndarray, torch.Tensor)):
        array = as_array(source)
        if array.ndim == 4 and array.shape[1] == 1:  # N×1×H×W, torchvision's batch
            array = array[:, 0]
        if array.ndim == 2:
            return [from_array(array)]
        if array.ndim != 3:
            raise UnsupportedImage(f"a batch of images must be N×H×W or N×1×H×W, not "
                                   f"{'×'.join(map(str, array.shape))}")
        return [from_array(image) for image in array]
    if isinstance(source, (str, os.PathLike, bytes, bytearray, Image.Image)) or hasattr(source, "read"):
        raise TypeError(f"read_digits() takes a sequence of images or an N×H×W array or tensor, "
                        f"not one {type(source).__name__}; use read() for one image")
    if not isinstance(source, Sequence):
        raise TypeError(f"read_digits() takes a sequence of images (each {ACCEPTED}) or an "
                        f"N×H×W array or tensor, not {type(source).__name__}")
    return [to_image(item) for item in cast("Sequence[ImageInput]", source)]


def as_array(pixels: np.ndarray | torch.Tensor) -> np.ndarray:
    """A tensor's pixels as a numpy array (from any device, detached); arrays as they are."""
    if isinstance(pixels, torch.Tensor):
        return pixels.detach().cpu().numpy()
    return pixels


def from_array(array: np.ndarray) -> Image.Image:
    """H×W grey or H×W×3 / H×W×4 (RGB, RGBA) pixels, uint8 0-255 or float in [0, 1] → an image.

    Anything else raises UnsupportedImage. Grey floats keep their precision (mode "F").
    """
    shape = "×".join(str(n) for n in array.shape)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)) or 0 in array.shape:
        raise UnsupportedImage(f"an image array must be H×W (grey) or H×W×3/4 (RGB/RGBA), not {shape}")
    if array.dtype == np.uint8:
        return Image.fromarray(np.ascontiguousarray(array))
    if not np.issubdtype(array.dtype, np.floating):
        raise UnsupportedImage(f"an image array must hold uint8 (0-255) or floats (0-1), not {array.dtype}")
    if not (np.isfinite(array).all() and array.min() >= 0 and array.max() <= 1):
        raise UnsupportedImage("a float image array must hold values in [0, 1] (a normalised "
                               "MNIST tensor is not: undo it first, x * 0.3081 + 0.1307)")
    if array.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(array, dtype=np.float32))  # mode "F"
    return Image.fromarray(np.round(array * 255).astype(np.uint8))


def load_image(source: ImageSource, name: str | None = None, max_pixels: int = MAX_PIXELS,
               max_decoded_bytes: int | None = None) -> Image.Image:
    """Decode a file, bytes or binary stream (first frame, EXIF-upright), or raise an ImageError:
    ImageNotFound, ImageTooLarge, UnsupportedImage (not an image) or UnreadableImage (damaged).

    `name` labels error messages for bytes and streams (e.g. an upload's filename). Images of
    more than `max_pixels` (at most MAX_PIXELS), or that would take more than
    `max_decoded_bytes` of memory once decoded, are refused from their header, undecoded. Big
    JPEGs are decoded reduced (JPEG_DRAFT_SIDE) before either limit is applied.
    """
    max_pixels = min(max_pixels, MAX_PIXELS)
    stream: Path | BinaryIO
    if isinstance(source, (bytes, bytearray)):
        label, stream = name or "<bytes>", io.BytesIO(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label, stream = name or str(path), path
        if not path.is_file():
            raise ImageNotFound(f"{label}: {_not_a_file(path)}")
    else:
        label, stream = name or str(getattr(source, "name", "<stream>")), source
    try:
        with warnings.catch_warnings():
            # We enforce our own, lower limit below, before any pixel is decoded.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(stream, formats=IMAGE_FORMATS) as image:
                _draft(image)
                _check_size(image, label, max_pixels, max_decoded_bytes)
                image.load()
                return _upright(image, label)
    except Image.DecompressionBombError:  # not an OSError: must come before the generic clause
        raise ImageTooLarge(f"{label}: image too large (decompression bomb)") from None
    except UnidentifiedImageError:
        raise UnsupportedImage(f"{label}: not an image (unrecognised format)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        raise UnreadableImage(f"{label}: not a readable image ({reason})") from None


def _not_a_file(path: Path) -> str:
    """Why `path` cannot be opened as an image file: missing, a folder, a link, a FIFO..."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "a broken symbolic link" if path.is_symlink() else "no such file"
    except OSError as e:  # a symbolic link loop, a name too long, no permission to look
        return f"cannot be opened ({e.strerror or type(e).__name__})"
    if stat.S_ISDIR(mode):
        return "is a folder, not an image file"
    return "not a regular file (a FIFO, socket or device): give an image file"


def header_pixels(data: bytes) -> int | None:
    """Width × height from an encoded image's header (nothing decoded), or None if it has none
    that Pillow can read."""
    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:
            width, height = image.size
            return width * height
    except Exception:  # noqa: BLE001 - any failure means "not known"; load_image says why
        return None


def _draft(image: Image.Image) -> None:
    """Let the JPEG decoder scale a big photo down by 2, 4 or 8 (to ≥ JPEG_DRAFT_SIDE)."""
    width, height = image.size
    if image.format == "JPEG" and max(width, height) > 2 * JPEG_DRAFT_SIDE:
        factor = JPEG_DRAFT_SIDE / max(width, height)
        image.draft(image.mode, (math.ceil(width * factor), math.ceil(height * factor)))


def bytes_per_pixel(mode: str) -> int:
    """What one pixel of `mode` takes in Pillow's memory: 8-bit images of several bands are
    stored 4 bytes a pixel (RGB too), single-band ones at their sample size (I;16: 2, F: 4)."""
    described = ImageMode.getmode(mode)
    return 4 if len(described.bands) > 1 else np.dtype(described.typestr).itemsize


def _check_size(image: Image.Image, label: str, max_pixels: int, max_decoded_bytes: int | None) -> None:
    """Refuse from the header: too many pixels, or too many bytes once decoded (counting pixels
    alone lets a 300 KB 16-bit RGBA PNG of 40 MP through, which costs over a second and several
    hundred MB to decode and read)."""
    (width, height), mode = image.size, image.mode
    if width * height > max_pixels:
        raise ImageTooLarge(f"{label}: image too large ({width}×{height} pixels, limit {max_pixels:,})")
    size = width * height * bytes_per_pixel(mode)
    if max_decoded_bytes is not None and size > max_decoded_bytes:
        mb = 1 << 20
        raise ImageTooLarge(f"{label}: image too large to decode ({width}×{height} {mode} takes "
                            f"{size / mb:,.0f} MB, limit {max_decoded_bytes / mb:,.0f} MB); scale it down")


def _upright(image: Image.Image, label: str) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image)
    except Exception as e:  # broken EXIF should not make readable pixels unreadable
        logger.warning("%s: ignoring unreadable EXIF orientation (%s)", label, e)
        return image.copy()


def to_grayscale(image: Image.Image) -> np.ndarray:
    """Luminance as floats in [0, 1]; transparency composited so strokes stay visible."""
    mode = image.mode
    if mode == "PA" or (mode == "P" and "transparency" in image.info):
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        values = np.nan_to_num(np.asarray(image, dtype=np.float32))
        top = float(values.max(initial=0.0))
        if mode == "F" and top <= 1:
            return np.clip(values, 0, 1)
        # Full scale is the smallest bit depth (8, 10, 12, ... 16) that holds the brightest value.
        return np.clip(values / (2.0 ** max(MIN_BITS, math.ceil(math.log2(top + 1))) - 1), 0, 1)
    if mode in ("RGBA", "LA", "La", "RGBa"):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
        luma, alpha = rgba[..., :ALPHA] @ np.array(LUMA, np.float32), rgba[..., ALPHA]
        weight = float(alpha.sum())
        # A drawing app's transparent canvas: put dark strokes on white, light ones on black.
        dark = weight == 0 or not is_light(float((luma * alpha).sum()) / weight)
        return luma * alpha + (1.0 if dark else 0.0) * (1.0 - alpha)
    gray = image.convert("L") if mode in ("L", "1", "RGB", "P") else image.convert("RGB").convert("L")
    return np.asarray(gray, dtype=np.float32) / 255.0
