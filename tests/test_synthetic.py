import torch

from digitlab.synthetic import printed_digits


def test_printed_digits_are_mnist_like_and_reproducible():
    images, labels = printed_digits(30, seed=3)
    assert images.shape == (30, 28, 28) and images.dtype == torch.uint8
    assert labels.tolist() == [i % 10 for i in range(30)]
    ink = images.float() / 255
    assert (ink.flatten(1).max(1).values > 0.9).all()  # every digit has solid ink
    rows, cols = (ink > 0.1).any(dim=2), (ink > 0.1).any(dim=1)
    assert (rows.sum(1) <= 21).all() and (cols.sum(1) <= 21).all()  # MNIST's 20-px box
    assert torch.equal(images, printed_digits(30, seed=3)[0])
    assert not torch.equal(images, printed_digits(30, seed=4)[0])
