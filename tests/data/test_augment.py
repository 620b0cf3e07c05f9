import torch
import torch.nn.functional as F

from digitlab.data.augment import Augment, AugmentConfig, random_theta, stroke_jitter, warp
from digitlab.data.loader import TensorLoader


def digit_batch(n=8):
    x = torch.zeros(n, 1, 28, 28)
    x[:, :, 6:22, 12:16] = 1.0  # a vertical bar, roughly a "1"
    return x


def test_identity_warp_leaves_images_alone():
    cfg = AugmentConfig(rotation=0, scale=(1, 1), shift=0, shear=0)
    x = digit_batch()
    torch.testing.assert_close(warp(x, cfg), x, atol=1e-5, rtol=0)


def test_warp_matches_torch_affine_grid():
    x = torch.rand(6, 1, 28, 28)
    g = torch.Generator().manual_seed(3)
    ours = warp(x, AugmentConfig(), torch.Generator().manual_seed(3))
    theta = random_theta(6, AugmentConfig(), x.device, g)
    reference = F.grid_sample(x, F.affine_grid(theta, [6, 1, 28, 28], align_corners=False),
                              align_corners=False)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)


def test_augment_keeps_shape_range_and_ink():
    x = digit_batch(64)
    out = Augment()(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out, x)
    ink = out.sum(dim=(1, 2, 3)) / x.sum(dim=(1, 2, 3))
    assert (ink > 0.3).all() and (ink < 3).all()  # digits stay on the canvas


def test_augment_is_reproducible_with_a_seeded_generator():
    x = digit_batch()
    a = Augment()(x, torch.Generator().manual_seed(5))
    b = Augment()(x, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_stroke_jitter_thickens_and_thins():
    x = digit_batch(256)
    out = stroke_jitter(x, 1.0, torch.Generator().manual_seed(1))
    ink = out.sum(dim=(1, 2, 3))
    assert ink.max() > x[0].sum() * 1.2 and ink.min() < x[0].sum() * 0.9


def test_loader_applies_augmentation_before_normalising():
    images = (digit_batch(32)[:, 0] * 255).byte()
    loader = TensorLoader(images, torch.zeros(32, dtype=torch.long), 32, mean=0.0, std=1.0,
                          shuffle=True, seed=1, augment=Augment())
    first = next(iter(loader))[0]
    assert first.shape == (32, 1, 28, 28) and first.max() <= 1.0
    assert torch.equal(first, next(iter(loader))[0])  # same epoch, same augmentation
    loader.set_epoch(1)
    assert not torch.equal(first, next(iter(loader))[0])
