"""Continuing a run folder: automatically from its last.pt, only with its own settings."""

import dataclasses
import json
import logging

import pytest
import torch

from digitlab.checkpoints.format import load_checkpoint
from digitlab.errors import ConfigError
from digitlab.training import trainer
from digitlab.training.config import DataConfig, TrainConfig
from digitlab.training.resume import remove_stale_temp_files
from digitlab.training.runs import load_run


def config(**kw):
    values = dict(recipe="tutorial-mlp", model="mlp", epochs=2, batch_size=32, progress=False,
                  device="cpu")
    return TrainConfig(**{**values, **kw})


@pytest.fixture(scope="module")
def data(mnist_root):
    return DataConfig(root=mnist_root, train_limit=640, test_limit=500)


@pytest.fixture(scope="module")
def one_epoch_run(data, tmp_path_factory):
    """A finished 1-epoch run that the tests below only try to continue (and must not touch)."""
    run = tmp_path_factory.mktemp("resume") / "run"
    trainer.train(config(epochs=1), data, run)
    return run


def same_weights(a, b):
    first, second = load_checkpoint(a / "last.pt"), load_checkpoint(b / "last.pt")
    return all(torch.equal(first.state_dict[k], second.state_dict[k]) for k in first.state_dict)


def test_the_same_command_again_continues_and_more_epochs_train_further(data, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="digitlab")
    straight = trainer.train(config(epochs=3), data, tmp_path / "straight")
    run = tmp_path / "run"
    trainer.train(config(), data, run)
    again = trainer.train(config(), data, run)  # finished: nothing to train, nothing overwritten
    assert "has finished its 2 epochs: nothing to train" in caplog.text
    assert len(again.history.epochs) == 2

    further = trainer.train(config(epochs=3), data, run)  # 2 done, 3 asked: one more
    assert "was planned for 2 epochs; training it to 3" in caplog.text
    assert [e.epoch for e in further.history.epochs] == [1, 2, 3]
    assert json.loads((run / "config.json").read_text())["epochs"] == 3
    assert same_weights(run, tmp_path / "straight")  # as if it had been planned for 3
    assert [e.accuracy for e in further.history.epochs] == [e.accuracy for e in straight.history.epochs]
    with pytest.raises(ConfigError, match="has already trained 3 epochs; --epochs 1 would undo"):
        trainer.train(config(epochs=1), data, run)


@pytest.mark.parametrize("change, named", [
    ({"lr": 0.5}, "lr 1.0 → 0.5"),
    ({"recipe": "fast"}, "recipe 'tutorial-mlp' → 'fast'"),
    ({"batch_size": 64, "seed": 2}, "batch_size 32 → 64; seed 1 → 2"),
])
def test_other_settings_are_refused_in_one_line_naming_them(data, one_epoch_run, change, named):
    run = one_epoch_run
    before = (run / "last.pt").read_bytes()
    with pytest.raises(ConfigError) as info:
        trainer.train(config(epochs=1, **change), data, run)
    message = str(info.value)
    assert named in message and "--resume" in message and "\n" not in message
    assert (run / "last.pt").read_bytes() == before  # nothing was touched


def test_other_data_settings_are_refused_but_where_the_files_live_is_not(data, one_epoch_run,
                                                                         tmp_path, mnist_root):
    run = one_epoch_run
    with pytest.raises(ConfigError, match="data.train_limit 640 → 320"):
        trainer.train(config(epochs=1), dataclasses.replace(data, train_limit=320), run)
    moved = tmp_path / "elsewhere"
    moved.symlink_to(mnist_root)
    trainer.train(config(epochs=1, progress=True), dataclasses.replace(data, root=moved), run)


def test_a_onecycle_run_cannot_be_stretched(data, tmp_path):
    run = tmp_path / "run"
    cfg = config(epochs=1, optimizer="adamw", lr=0.01, scheduler="onecycle")
    trainer.train(cfg, data, run)
    with pytest.raises(ConfigError, match="onecycle schedule, whose shape depends on that count"):
        trainer.train(dataclasses.replace(cfg, epochs=2), data, run)


def test_temp_files_of_killed_saves_are_removed_and_nothing_else(tmp_path):
    stale = [tmp_path / ".last.pt.abc123.tmp", tmp_path / ".metrics.json.x1.tmp",
             tmp_path / ".best.pt.q.tmp"]
    kept = [tmp_path / "last.pt", tmp_path / ".notes.txt.a.tmp", tmp_path / "my.last.pt.tmp"]
    for path in stale + kept:
        path.write_bytes(b"half")
    assert sorted(remove_stale_temp_files(tmp_path)) == sorted(stale)
    assert all(p.exists() for p in kept) and not any(p.exists() for p in stale)


def test_a_run_start_clears_stale_temp_files(data, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / ".last.pt.k1ll3d.tmp").write_bytes(b"\0" * 1000)
    trainer.train(config(epochs=1), data, run)
    assert not list(run.glob(".*.tmp")) and load_run(run).accuracy > 0.5
