"""The line reader's recipe (`train --recipe numbers`): a few batches on the CPU, a run folder,
resume, pack and export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from digitlab.checkpoints.lines import load_line_checkpoint
from digitlab.cli import main


@pytest.fixture(scope="module")
def line_run(mnist_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "numbers"
    assert main(["train", "--recipe", "numbers", "--epochs", "1", "--train-limit", "96",
                 "--test-limit", "16", "--batch-size", "32", "--out", str(out), "--no-progress"]) == 0
    return out


def test_the_numbers_recipe_trains_a_few_batches_into_a_run_folder(line_run):
    for name in ("config.json", "metrics.json", "last.pt", "best.pt", "performance.png"):
        assert (line_run / name).is_file(), name
    metrics = json.loads((line_run / "metrics.json").read_text())
    [epoch] = metrics["epochs"]
    assert metrics["recipe"] == "numbers" and epoch["loss"] > 0 and 0 <= epoch["val_exact"] <= 1
    saved = load_line_checkpoint(line_run / "last.pt")
    assert saved.training["epoch"] == 1 and "optimizer" in saved.training


def test_resume_trains_on_to_more_epochs_and_refuses_other_settings(line_run, capsys):
    assert main(["train", "--resume", str(line_run), "--epochs", "2", "--no-progress"]) == 0
    assert len(json.loads((line_run / "metrics.json").read_text())["epochs"]) == 2
    assert main(["train", "--resume", str(line_run), "--lr", "0.5"]) == 1
    assert "only --epochs may change" in capsys.readouterr().err


def test_pack_and_export_a_line_reader(line_run, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    assert main(["pack", str(line_run / "last.pt"), "--out", str(tmp_path / "n.pt")]) == 0
    assert load_line_checkpoint(tmp_path / "n.pt").training == {}
    assert json.loads((tmp_path / "n.json").read_text())["epochs"]
    assert main(["export", str(tmp_path / "n.pt"), "--format", "onnx", "--out", str(tmp_path / "n.onnx"),
                 "--check-limit", "20"]) == 0
    assert "the same strings as PyTorch on 20 synthetic fields" in capsys.readouterr().out
    from PIL import Image, ImageDraw

    from digitlab.predicting.line_reader import LineReader

    picture = Image.new("L", (120, 40), 255)
    ImageDraw.Draw(picture).line([(20, 8), (20, 32), (40, 8), (60, 32), (90, 10)], fill=0, width=3)
    read = [[d.probabilities for d in reader.read_numbers([picture], 0.0)[0].digits]
            for reader in (LineReader.load(tmp_path / "n.pt"), LineReader.load(tmp_path / "n.onnx"))]
    assert len(read[0]) == len(read[1])  # the export reads as the checkpoint does
    for a, b in zip(*read, strict=True):
        assert a == pytest.approx(b, abs=1e-4)
    assert main(["export", str(tmp_path / "n.pt"), "--format", "torchscript", "--out",
                 str(tmp_path / "n.ts")]) == 1
    assert not (tmp_path / "n.ts").exists()
