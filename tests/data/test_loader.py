import torch

from digitlab.data.loader import TensorLoader


def make_loader(n=100, batch=32, **kw):
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1).expand(n, 2, 2).contiguous()
    labels = torch.arange(n)
    return TensorLoader(images, labels, batch, mean=0.0, std=1.0, **kw)


def test_batches_cover_the_split_once_with_normalised_images():
    loader = make_loader(shuffle=True, seed=3)
    batches = list(loader)
    assert [len(y) for _, y in batches] == [32, 32, 32, 4] and len(loader) == 4
    labels = torch.cat([y for _, y in batches])
    assert sorted(labels.tolist()) == list(range(100))
    x, y = batches[0]
    assert x.shape == (32, 1, 2, 2) and x.dtype == torch.float32
    torch.testing.assert_close(x[:, 0, 0, 0], y.float() / 255)  # image i holds value i


def test_normalisation_uses_mean_and_std():
    images = torch.full((4, 2, 2), 255, dtype=torch.uint8)
    loader = TensorLoader(images, torch.zeros(4, dtype=torch.long), 4, mean=0.5, std=0.25)
    x, _ = next(iter(loader))
    torch.testing.assert_close(x, torch.full_like(x, 2.0))


def test_shuffle_depends_only_on_seed_and_epoch():
    a, b = make_loader(shuffle=True, seed=1), make_loader(shuffle=True, seed=1)
    first = torch.cat([y for _, y in a])
    assert torch.equal(first, torch.cat([y for _, y in b]))
    assert not torch.equal(first, torch.arange(100))
    a.set_epoch(2)
    assert not torch.equal(first, torch.cat([y for _, y in a]))
    b.set_epoch(2)
    assert torch.equal(torch.cat([y for _, y in a]), torch.cat([y for _, y in b]))


def test_unshuffled_order_is_the_file_order():
    assert torch.equal(torch.cat([y for _, y in make_loader()]), torch.arange(100))


def test_shards_are_disjoint_equal_slices_of_one_permutation():
    shards = [make_loader(shuffle=True, seed=5, shard=r, num_shards=3) for r in range(3)]
    seen = [torch.cat([y for _, y in s]) for s in shards]
    assert [len(s) for s in seen] == [33, 33, 33]
    assert len(set(torch.cat(seen).tolist())) == 99
