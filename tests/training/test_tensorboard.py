"""`digitlab train --tensorboard`: event files whose numbers are metrics.json's."""

import json
import sys

import pytest

from digitlab.cli import main
from digitlab.errors import ConfigError
from digitlab.training import trainer
from digitlab.training.config import DataConfig, TrainConfig
from digitlab.training.runs import EpochRecord, History
from digitlab.training.tensorboard import epoch_scalars


def test_a_tiny_run_writes_scalars_that_match_metrics_json_and_figures(mnist_root, tmp_path, capsys):
    pytest.importorskip("tensorboard", reason="needs the tensorboard package (digitlab[tensorboard])")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    code = main(["train", "--recipe", "tutorial-mlp", "--epochs", "2", "--train-limit", "1200",
                 "--test-limit", "500", "--val-split", "200", "--tensorboard", "--no-progress",
                 "--device", "cpu", "--data-dir", str(mnist_root), "--out", str(run)])
    assert code == 0
    metrics = json.loads((run / "metrics.json").read_text())
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    fields = {"loss/train": "train_loss", "loss/test": "test_loss", "accuracy/test": "accuracy",
              "lr": "lr", "images_per_s": "images_per_s", "loss/validation": "val_loss",
              "accuracy/validation": "val_accuracy"}
    assert set(fields) <= set(events.Tags()["scalars"])
    for tag, key in fields.items():
        logged = [(s.step, s.value) for s in events.Scalars(tag)]
        expected = [(e["epoch"], pytest.approx(e[key], rel=1e-6)) for e in metrics["epochs"]]
        assert logged == expected, tag
    train_log = [(s.step, s.value) for s in events.Scalars("loss/train_log")]
    assert train_log == [(p["samples"], pytest.approx(p["loss"], rel=1e-6)) for p in metrics["train"]]
    for tag in ("confusion", "misread"):  # one picture per epoch
        assert [i.step for i in events.Images(tag)] == [1, 2]
        assert events.Images(tag)[0].width > 300
    assert json.loads((run / "config.json").read_text())["tensorboard"] is True


def test_without_tensorboard_installed_it_says_how_to_install(mnist_root, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import raises ImportError
    config = TrainConfig(recipe="tutorial-mlp", model="mlp", epochs=1, progress=False,
                         device="cpu", tensorboard=True)
    with pytest.raises(ConfigError, match=r"pip install 'digitlab\[tensorboard\]'"):
        trainer.train(config, DataConfig(root=mnist_root, train_limit=64, test_limit=64),
                      tmp_path / "run")
    assert not (tmp_path / "run" / "last.pt").exists()


def test_real_folders_get_a_scalar_each_and_their_mean():
    judged = EpochRecord(epoch=1, samples=10, train_loss=1.0, test_loss=1.0, accuracy=0.5, lr=1.0,
                         seconds=1.0, images_per_s=10.0, real={"mine": 0.75, "theirs": 0.25},
                         real_mean=0.5)
    scalars = epoch_scalars(History(epochs=[judged]))
    assert scalars["accuracy/real/mine"] == 0.75 and scalars["accuracy/real/theirs"] == 0.25
    assert scalars["accuracy/real_mean"] == 0.5
