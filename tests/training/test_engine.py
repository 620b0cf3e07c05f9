import logging

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


def test_no_bar_off_a_terminal_but_debug_lines(capfd, caplog):
    caplog.set_level(logging.DEBUG, logger="digitlab")
    model = create_model("mlp")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    train_one_epoch(model, fake_loader(), optimizer, progress=True, log_interval=4, description="e1")
    assert "\r" not in capfd.readouterr().err  # stderr is not a terminal under pytest
    lines = [r.getMessage() for r in caplog.records if r.name == "digitlab.training.engine"]
    assert [line.split(",")[0] for line in lines] == ["e1: batch 1/8", "e1: batch 5/8"]
    assert "loss" in lines[1] and lines[1].endswith("images/s")


def test_pictures_labelled_not_a_digit_are_learned_as_even_odds():
    from digitlab.data import NOT_A_DIGIT

    torch.manual_seed(0)
    pixels, numbers = make_fake_images(64)
    digits = torch.from_numpy(pixels).float().unsqueeze(1) / 255
    labels = torch.from_numpy(numbers).long()
    blanks = torch.rand(64, 1, 28, 28) * 0.1  # faint noise: no digit
    images = torch.cat([digits, blanks])
    targets = torch.cat([labels, torch.full((64,), NOT_A_DIGIT)])
    model = create_model("mlp")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        train_one_epoch(model, [(images, targets)], optimizer, progress=False)
    model.eval()
    with torch.no_grad():
        on_digits, on_blanks = model(digits).exp(), model(blanks).exp()
    assert (on_digits.argmax(1) == labels).float().mean() > 0.9
    assert on_blanks.max(1).values.max() < 0.3  # even odds are 0.1 each: never a confident digit
