import json
import logging

import pytest
import torch

from digitlab.checkpoints.format import load_checkpoint
from digitlab.errors import ConfigError
from digitlab.training import trainer
from digitlab.training.config import DataConfig, TrainConfig
from digitlab.training.recipes import RECIPES
from digitlab.training.runs import load_run


def config(**kw):
    values = dict(recipe="tutorial", model="cnn", epochs=1, progress=False, device="cpu")
    return TrainConfig(**{**values, **kw})


def test_a_short_real_run_learns(mnist_root, tmp_path):
    data = DataConfig(root=mnist_root, train_limit=2000, test_limit=1000)
    result = trainer.train(config(), data, tmp_path / "run")
    assert result.accuracy > 0.7  # chance is 0.1
    for name in ("config.json", "metrics.json", "last.pt", "best.pt"):
        assert (tmp_path / "run" / name).is_file()
    assert not (tmp_path / "run" / "performance.png").exists()  # the caller plots
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["lr"] == 1.0 and saved["parameters"] == 1_199_882 and saved["versions"]["torch"]
    run = load_run(tmp_path / "run")
    assert run.history.epochs[0].samples == 2000 and run.history.train[0].samples == 64
    assert result == run  # what train() returns is what the folder reads back


def test_killed_run_resumes_to_the_same_result(mnist_root, tmp_path, monkeypatch):
    data = DataConfig(root=mnist_root, train_limit=640, test_limit=500)
    cfg = config(epochs=3, batch_size=32)
    straight = trainer.train(cfg, data, tmp_path / "straight")

    real = trainer.train_one_epoch
    calls = {"n": 0}

    def dies_in_epoch_three(model, batches, optimizer, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            iterator = iter(batches)
            next(iterator)  # part of the epoch happens, then the process is killed
            raise KeyboardInterrupt
        return real(model, batches, optimizer, **kw)

    monkeypatch.setattr(trainer, "train_one_epoch", dies_in_epoch_three)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(cfg, data, tmp_path / "killed")
    assert load_checkpoint(tmp_path / "killed" / "last.pt").epoch == 2
    monkeypatch.setattr(trainer, "train_one_epoch", real)
    resumed = trainer.train(cfg, data, tmp_path / "killed", resume=True)

    assert resumed.accuracy == straight.accuracy and len(resumed.history.epochs) == 3
    a = load_checkpoint(tmp_path / "straight" / "last.pt")
    b = load_checkpoint(tmp_path / "killed" / "last.pt")
    for key in a.state_dict:
        assert torch.equal(a.state_dict[key], b.state_dict[key]), key
    history_a, history_b = load_run(tmp_path / "straight").history, load_run(tmp_path / "killed").history
    assert history_a.train == history_b.train
    assert [e.accuracy for e in history_a.epochs] == [e.accuracy for e in history_b.epochs]


def test_resume_without_a_finished_epoch_starts_at_epoch_one(mnist_root, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="digitlab")
    data = DataConfig(root=mnist_root, train_limit=64, test_limit=100)
    result = trainer.train(config(model="mlp", dry_run=True), data, tmp_path, resume=True)
    assert "no last.pt (no epoch finished yet): starting at epoch 1" in caplog.text
    assert len(result.history.epochs) == 1 and load_checkpoint(tmp_path / "last.pt").epoch == 1


def test_save_model_writes_a_tutorial_state_dict(mnist_root, tmp_path):
    data = DataConfig(root=mnist_root, train_limit=64, test_limit=100)
    trainer.train(config(save_model=True, dry_run=True), data, tmp_path)
    state = torch.load(tmp_path / "mnist_cnn.pt", weights_only=True)
    assert list(state) == ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
                           "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]


@pytest.mark.parametrize("bad", [{"epochs": 0}, {"batch_size": -1}, {"lr": 0}, {"device": "tpu"}])
def test_impossible_settings_are_refused(bad):
    with pytest.raises(ConfigError):
        config(**bad)


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_every_recipe_runs(recipe, mnist_root, tmp_path):
    from digitlab.training.recipes import build_config

    cfg = build_config(recipe, epochs=2, progress=False, device="cpu")
    data = DataConfig(root=mnist_root, train_limit=512, test_limit=256)
    result = trainer.train(cfg, data, tmp_path)
    assert len(result.history.epochs) == 2 and 0 <= result.accuracy <= 1
    assert load_checkpoint(tmp_path / "best.pt").config["recipe"] == recipe


def test_validation_split_picks_best_and_is_never_trained_on(mnist_root, tmp_path, monkeypatch):
    data = DataConfig(root=mnist_root, train_limit=1200, test_limit=300, val_split=400)
    seen = []
    real = trainer.TensorLoader

    def recording(images, labels, batch_size, **kw):
        seen.append((len(images), kw.get("shuffle", False)))
        return real(images, labels, batch_size, **kw)

    monkeypatch.setattr(trainer, "TensorLoader", recording)
    trainer.train(config(model="mlp", epochs=3, batch_size=50, lr=0.01, gamma=1.0), data,
                  tmp_path / "run")
    assert (800, True) in seen and (400, False) in seen  # trains on 800, checks on the last 400
    epochs = load_run(tmp_path / "run").history.epochs
    assert all(0 <= e.val_accuracy <= 1 and e.val_loss > 0 for e in epochs)
    best = max(range(3), key=lambda i: (epochs[i].val_accuracy, i))  # ties: the later epoch
    checkpoint = load_checkpoint(tmp_path / "run" / "best.pt")
    assert checkpoint.epoch == best + 1
    assert checkpoint.metrics["val_accuracy"] == epochs[best].val_accuracy
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["data"]["val_split"] == 400


def test_a_validation_split_as_large_as_the_training_data_is_refused(mnist_root, tmp_path):
    data = DataConfig(root=mnist_root, train_limit=500, test_limit=100, val_split=500)
    with pytest.raises(ConfigError, match="--val-split 500 leaves nothing to train on"):
        trainer.train(config(), data, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_diverging_run_stops_naming_epoch_and_batch_and_saves_nothing(mnist_root, tmp_path):
    from digitlab.training.engine import TrainingDiverged

    data = DataConfig(root=mnist_root, train_limit=640, test_limit=100)
    with pytest.raises(TrainingDiverged) as info:
        trainer.train(config(model="mlp", lr=1e30, batch_size=32), data, tmp_path)
    message = str(info.value)
    assert message.startswith("training diverged in epoch 1 at batch ") and "the loss is nan" in message
    assert "(lr 1e+30); no checkpoint was written: train again with a lower --lr" in message
    assert not (tmp_path / "last.pt").exists() and not (tmp_path / "best.pt").exists()


def test_weights_gone_nan_are_never_saved_and_last_pt_keeps_the_epoch_before(mnist_root, tmp_path,
                                                                           monkeypatch):
    from digitlab.training.engine import TrainingDiverged

    real = trainer.train_one_epoch
    calls = []

    def poisons_in_epoch_two(model, batches, optimizer, **kw):
        stats = real(model, batches, optimizer, **kw)
        calls.append(1)
        if len(calls) == 2:  # the loss was fine, but a weight is not (an overflow in the step)
            with torch.no_grad():
                next(model.parameters()).view(-1)[5] = float("inf")
        return stats

    monkeypatch.setattr(trainer, "train_one_epoch", poisons_in_epoch_two)
    data = DataConfig(root=mnist_root, train_limit=320, test_limit=100)
    with pytest.raises(TrainingDiverged, match=r"in epoch 2 \(weights 'fc1.weight' hold NaN or inf\)"
                       r" \(lr 1\); last.pt keeps epoch 1"):
        trainer.train(config(model="mlp", epochs=3, batch_size=32), data, tmp_path)
    assert load_checkpoint(tmp_path / "last.pt").epoch == 1
    assert load_checkpoint(tmp_path / "best.pt").epoch == 1
    assert [e.epoch for e in load_run(tmp_path).history.epochs] == [1]
