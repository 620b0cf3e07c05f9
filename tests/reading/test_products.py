import numpy as np
import pytest
from PIL import Image

from digitlab.reading.pipelines import preprocess
from digitlab.reading.products import background_level, preprocess_product


def photo(width=300, height=200, backdrop=255, shade=40, box=(100, 40, 160, 170)):
    """A product photo: a dark rectangle (the object) on a plain backdrop."""
    array = np.full((height, width), backdrop, dtype=np.uint8)
    x0, y0, x1, y1 = box
    array[y0:y1, x0:x1] = shade
    return Image.fromarray(array)


def test_object_comes_out_bright_on_black_trimmed_and_centred():
    prepared = preprocess_product(photo())
    pixels = prepared.pixels.numpy()
    assert prepared.has_ink and pixels.shape == (28, 28)
    assert prepared.steps["inverted"] and prepared.steps["object_box"] == [100, 40, 160, 170]
    rows, cols = np.flatnonzero(pixels.max(1) > 0.5), np.flatnonzero(pixels.max(0) > 0.5)
    assert rows[0] == 0 and rows[-1] == 27  # the longest edge (height) fills the field
    assert abs((cols[0] + cols[-1]) / 2 - 13.5) <= 0.5  # centred across
    assert pixels.max() == pytest.approx(1.0) and pixels[0, 0] == 0


def test_polarity_follows_the_background():
    dark = preprocess_product(photo(backdrop=0, shade=215)).pixels
    light = preprocess_product(photo(backdrop=255, shade=40)).pixels
    np.testing.assert_allclose(dark.numpy(), light.numpy(), atol=1e-5)


def test_grey_backdrop_goes_black():
    gray = np.asarray(photo(backdrop=180), dtype=np.float32) / 255
    assert background_level(gray) == pytest.approx(180 / 255)
    pixels = preprocess_product(photo(backdrop=180, shade=20)).pixels.numpy()
    assert pixels[0, 0] == 0 and pixels.max() == pytest.approx(1.0)


def test_a_blank_picture_has_nothing_to_classify():
    prepared = preprocess(Image.new("RGB", (64, 64), (250, 250, 250)), "product")
    assert not prepared.has_ink and "nothing stands out" in prepared.steps["reason"]
