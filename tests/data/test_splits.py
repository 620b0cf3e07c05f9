import pytest
import torch

from digitlab.data import VALIDATION_SIZE, split_validation
from digitlab.errors import ConfigError


def test_the_validation_split_is_the_last_images_of_the_training_split():
    images, labels = torch.arange(10).view(10, 1, 1), torch.arange(10) % 3
    train_x, train_y, val = split_validation(images, labels, 4)
    assert train_x.flatten().tolist() == [0, 1, 2, 3, 4, 5] and len(train_y) == 6
    assert val is not None
    assert val[0].flatten().tolist() == [6, 7, 8, 9] and val[1].tolist() == [0, 1, 2, 0]


def test_no_validation_split_keeps_every_image():
    images, labels = torch.zeros(5, 2, 2), torch.zeros(5)
    train_x, train_y, val = split_validation(images, labels, 0)
    assert train_x is images and train_y is labels and val is None


def test_a_split_that_leaves_nothing_to_train_on_is_refused():
    with pytest.raises(ConfigError, match=f"--val-split 5 leaves nothing.*{VALIDATION_SIZE} is usual"):
        split_validation(torch.zeros(5, 2, 2), torch.zeros(5), 5)

