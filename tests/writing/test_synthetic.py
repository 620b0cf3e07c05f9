import torch

from digitlab.writing.synthetic import printed_digits


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


def test_redrawn_digits_keep_their_labels_and_look_like_what_the_model_sees(mnist_root):
    from digitlab.data import load_split
    from digitlab.predicting.predictor import Predictor
    from digitlab.writing.synthetic import redrawn_digits

    images, labels = load_split(mnist_root, train=True, limit=500)
    redrawn, redrawn_labels = redrawn_digits(images, labels, 40, seed=5)
    assert redrawn.shape == (40, 28, 28) and redrawn.dtype == torch.uint8
    assert torch.equal(redrawn, redrawn_digits(images, labels, 40, seed=5)[0])
    ink = redrawn.float() / 255
    rows, cols = (ink > 0.1).any(dim=2), (ink > 0.1).any(dim=1)
    assert (rows.sum(1) <= 22).all() and (cols.sum(1) <= 22).all()  # normalised to the 20-px box
    assert (ink.flatten(1).max(1).values > 0.9).all()
    # they are still the digits their labels say: a trained model reads them
    predicted = Predictor.from_checkpoint(None).predict(ink).argmax(1)
    assert (predicted == redrawn_labels).float().mean() > 0.9
    assert redrawn_digits(images, labels, 0, seed=5)[0].shape == (0, 28, 28)


def test_styled_digits_are_reproducible_mnist_shaped_and_still_their_digits(mnist_root):
    from digitlab.data import load_split
    from digitlab.predicting.predictor import Predictor
    from digitlab.writing.synthetic import styled_digits

    images, labels = load_split(mnist_root, train=True, limit=500)
    styled, styled_labels = styled_digits(images, labels, 40, seed=5)
    assert styled.dtype == torch.uint8 and styled.shape[1:] == (28, 28)
    assert 36 <= len(styled) <= 40 and len(styled) == len(styled_labels)  # a few may find no ink
    again, again_labels = styled_digits(images, labels, 40, seed=5)
    assert torch.equal(styled, again) and torch.equal(styled_labels, again_labels)
    predicted = Predictor.from_checkpoint(None).predict(styled.float() / 255).argmax(1)
    assert (predicted == styled_labels).float().mean() > 0.8
    assert styled_digits(images, labels, 0, seed=5)[0].shape == (0, 28, 28)
