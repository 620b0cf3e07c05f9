"""One normalisation for training batches, reading and export: uint8 and float inputs agree."""

import torch

from digitlab.data.normalise import normalise


def test_uint8_and_float_pixels_normalise_alike():
    images = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    from_uint8 = normalise(images, 0.1307, 0.3081, max_value=255.0)
    from_float = normalise(images.float() / 255, 0.1307, 0.3081)
    assert from_uint8.dtype == torch.float32 and from_uint8.shape == images.shape
    assert torch.allclose(from_uint8, from_float, atol=1e-5)
    assert torch.allclose(from_float, (images.float() / 255 - 0.1307) / 0.3081, atol=1e-5)


def test_the_input_is_left_alone():
    pixels = torch.rand(2, 28, 28)
    before = pixels.clone()
    normalise(pixels, 0.5, 0.25)
    assert torch.equal(pixels, before)
