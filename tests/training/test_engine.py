import torch

from digitlab.data.loader import TensorLoader
from digitlab.devices import resolve_device
from digitlab.models import create_model
from digitlab.training.engine import evaluate, train_one_epoch
from tests.conftest import make_fake_images


def fake_loader(n=256, batch=32, shuffle=True):
    x, y = make_fake_images(n)
    return TensorLoader(torch.from_numpy(x), torch.from_numpy(y).long(), batch,
                        mean=0.13, std=0.31, shuffle=shuffle)


def test_training_overfits_a_small_set():
    torch.manual_seed(0)
    model = create_model("mlp")
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    loader = fake_loader()
    before = evaluate(model, fake_loader(shuffle=False))
    for epoch in range(5):
        loader.set_epoch(epoch)
        stats = train_one_epoch(model, loader, optimizer, progress=False, log_interval=2)
    after = evaluate(model, fake_loader(shuffle=False))
    assert after.accuracy == 1.0 and after.loss < before.loss / 10
    assert stats.samples == 256 and len(stats.log) == 4 and stats.images_per_s > 0
    assert stats.log[0][0] == 32  # samples seen when the first loss was logged


def test_max_batches_limits_an_epoch():
    model = create_model("mlp")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    stats = train_one_epoch(model, fake_loader(), optimizer, max_batches=1, progress=False)
    assert stats.samples == 32


def test_evaluate_counts_a_confusion_matrix():
    class Constant(torch.nn.Module):
        def forward(self, x):
            return torch.log_softmax(torch.tensor([0.0, 5.0] + [0.0] * 8).repeat(len(x), 1), 1)

    loader = fake_loader(shuffle=False)
    labels = torch.cat([y for _, y in loader])
    result = evaluate(Constant(), loader)
    assert result.total == 256 and result.confusion[:, 1].tolist() == labels.bincount(minlength=10).tolist()
    assert result.correct == int((labels == 1).sum()) and result.per_class_accuracy[1] == 1.0


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
