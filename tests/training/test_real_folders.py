"""--val-real and --select-by real: labelled real folders judge every epoch, never teach."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from digitlab import data as datasets
from digitlab.checkpoints.format import Checkpoint, load_checkpoint
from digitlab.cli import main
from digitlab.errors import ConfigError
from digitlab.models import create_model
from digitlab.predicting.predictor import Predictor
from digitlab.reports import wild
from digitlab.training import real_folders, trainer
from digitlab.training.config import DataConfig, TrainConfig
from digitlab.training.runs import load_run


def config(**kw):
    values = dict(recipe="tutorial-mlp", model="mlp", epochs=1, batch_size=32, progress=False,
                  device="cpu")
    return TrainConfig(**{**values, **kw})


def write_folder(folder: Path, images: torch.Tensor, labels: torch.Tensor, crop: bool) -> Path:
    """MNIST test digits as dark ink on white paper, named `<digit>_<i>.png`; `crop`: cut to
    the ink, so that the robust pipeline doubts the picture and adds views (the vote's path)."""
    folder.mkdir(parents=True)
    for i, (image, label) in enumerate(zip(images.numpy(), labels.tolist(), strict=True)):
        paper = 255 - image
        if crop:
            rows, cols = np.where(paper.min(1) < 128)[0], np.where(paper.min(0) < 128)[0]
            paper = paper[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        Image.fromarray(paper).save(folder / f"{label}_{i}.png")
    return folder


@pytest.fixture(scope="module")
def folders(mnist_root, tmp_path_factory):
    """Two labelled folders of 20 test digits each: whole fields, and ones cut to the ink."""
    x, y = datasets.load_split(mnist_root, train=False, limit=40)
    root = tmp_path_factory.mktemp("real")
    return (write_folder(root / "paper", x[:20], y[:20], crop=False),
            write_folder(root / "cropped", x[20:], y[20:], crop=True))


@pytest.fixture(scope="module")
def data(mnist_root, folders):
    return DataConfig(root=mnist_root, train_limit=500, test_limit=500,
                      val_real=tuple(str(f) for f in folders))


def test_val_real_writes_per_folder_accuracy_to_metrics_json(mnist_root, folders, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--recipe", "tutorial-mlp", "--train-limit", "500", "--test-limit", "500",
                 "--epochs", "1", "--data-dir", str(mnist_root), "--val-real", str(folders[0]),
                 "--val-real", str(folders[1]), "--out", str(run), "--no-progress"]) == 0
    epochs = json.loads((run / "metrics.json").read_text())["epochs"]
    assert len(epochs) == 1
    for epoch in epochs:
        assert set(epoch["real"]) == {"paper", "cropped"}
        assert all(0 <= a <= 1 for a in epoch["real"].values())
        assert epoch["real_mean"] == pytest.approx(sum(epoch["real"].values()) / 2)
    settings = json.loads((run / "config.json").read_text())["data"]
    assert settings["val_real"] == [str(f) for f in folders] and "select_by" not in settings
    assert load_run(run).history.epochs[0].real == epochs[0]["real"]


def test_select_by_real_picks_best_pt_by_the_mean_real_accuracy(data, tmp_path):
    run = trainer.train(config(epochs=3), dataclasses.replace(data, select_by="real"), tmp_path / "r")
    epochs = run.history.epochs
    best = max(range(3), key=lambda i: (epochs[i].real_mean, i))  # ties: the later epoch
    checkpoint = load_checkpoint(tmp_path / "r" / "best.pt")
    assert checkpoint.epoch == best + 1 and checkpoint.metrics["real"] == epochs[best].real
    assert run.best_score == epochs[best].real_mean
    assert json.loads((tmp_path / "r" / "config.json").read_text())["data"]["select_by"] == "real"


def test_folders_are_preprocessed_once_not_every_epoch(data, tmp_path, monkeypatch):
    from digitlab.reading import pipelines

    calls = []
    real = pipelines.preprocess
    monkeypatch.setattr(pipelines, "preprocess", lambda *a: calls.append(1) or real(*a))
    trainer.train(config(epochs=2), data, tmp_path / "run")
    assert len(calls) == 40  # the pictures of both folders, once


def test_a_folder_scores_what_the_predictor_reads(folders):
    """The vote among views is the Predictor's: a folder's accuracy is `bench wild --real`'s."""
    torch.manual_seed(0)
    model = create_model("mlp", num_classes=10).eval()
    checkpoint = Checkpoint("mlp", {"num_classes": 10}, model.state_dict())
    loaded = real_folders.load_real_folders([str(f) for f in folders], datasets.MNIST,
                                            checkpoint.mean, checkpoint.std, 7, torch.device("cpu"))
    assert any(x.dim() == 5 for x, _ in loaded[1].batches)  # cropped digits carry several views
    scores = real_folders.score_real_folders(model, loaded, 10)
    predictor = Predictor.from_model(model, checkpoint)
    for folder in folders:
        expected = wild.score_real(predictor, folder, None)["all"]["all"]["robust"]["accuracy"]
        assert scores[folder.name] == pytest.approx(expected)


def test_refusals_come_before_training_in_one_line(mnist_root, folders, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no digits here")
    cases = [(tmp_path / "nowhere", "is not a folder of labelled digits"),
             (empty, "holds no labelled pictures")]
    for folder, message in cases:
        with pytest.raises(ConfigError, match=message):
            trainer.train(config(), DataConfig(root=mnist_root, train_limit=100, test_limit=100,
                                               val_real=(str(folder),)), tmp_path / "run")
        assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="not a digit data set"):
        real_folders.load_real_folders([str(folders[0])], datasets.FASHION_MNIST, 0.5, 0.5, 10,
                                       torch.device("cpu"))
    with pytest.raises(ConfigError, match="--select-by real needs at least one --val-real DIR"):
        DataConfig(root=mnist_root, select_by="real")
    with pytest.raises(ConfigError, match="--select-by val needs --val-split"):
        DataConfig(root=mnist_root, select_by="val")
    with pytest.raises(ConfigError, match="two are called 'paper'"):
        DataConfig(root=mnist_root, val_real=(str(folders[0]), str(tmp_path / "x" / "paper")))


def test_the_cli_refuses_select_by_real_without_folders(mnist_root, tmp_path, capsys):
    assert main(["train", "--recipe", "tutorial-mlp", "--select-by", "real", "--data-dir",
                 str(mnist_root), "--out", str(tmp_path / "run")]) != 0
    err = capsys.readouterr().err.strip()
    assert err.endswith("--select-by real needs at least one --val-real DIR") and "\n" not in err


def test_a_resume_keeps_the_folders_and_refuses_others(data, folders, tmp_path):
    run = tmp_path / "run"
    trainer.train(config(), data, run)
    with pytest.raises(ConfigError, match="data.val_real"):
        trainer.train(config(), dataclasses.replace(data, val_real=(str(folders[0]),)), run)
    assert main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 0
    assert [set(e.real or ()) for e in load_run(run).history.epochs] == [{"paper", "cropped"}] * 2


def test_the_numbers_recipe_refuses_real_folders(folders, tmp_path, capsys):
    assert main(["train", "--recipe", "numbers", "--val-real", str(folders[0]), "--out",
                 str(tmp_path / "n")]) == 1
    assert "--val-real and --select-by judge a digit recipe" in capsys.readouterr().err
