"""Image errors become HTTP answers by their type, whatever their message says."""

import pytest

from digitlab.errors import ImageError, ImageNotFound, ImageTooLarge, UnreadableImage, UnsupportedImage
from digitlab.service.errors import image_error_status


@pytest.mark.parametrize(("error", "status", "code"), [
    (ImageTooLarge("x"), 413, "image_too_large"),
    (UnsupportedImage("too large, not an image"), 415, "not_an_image"),  # the type decides
    (UnreadableImage("not an image; too large"), 400, "unreadable_image"),
    (ImageNotFound("x"), 400, "unreadable_image"),
    (ImageError("x"), 400, "unreadable_image"),
])
def test_image_errors_map_to_statuses_by_type(error, status, code):
    assert image_error_status(error) == (status, code)
