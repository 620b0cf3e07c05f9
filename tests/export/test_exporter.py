"""Exported models (ONNX, TorchScript) must reproduce PyTorch, or not be written at all."""

import json

import pytest
import torch

from digitlab.checkpoints.format import load_model
from digitlab.data import load_split
from digitlab.errors import DigitlabError
from digitlab.export.exporter import ExportError, export_model
from digitlab.predicting.backends import OnnxBackend
from digitlab.predicting.predictor import Predictor


@pytest.fixture(scope="module")
def digits(mnist_root):
    images, labels = load_split(mnist_root, train=False, limit=300)
    return images.float() / 255, labels


def test_onnx_export_reproduces_pytorch_and_runs_any_batch_size(tiny_run, digits, tmp_path):
    pixels, _ = digits
    model, checkpoint = load_model(tiny_run / "best.pt")
    out = tmp_path / "model.onnx"
    check = export_model(model, checkpoint, out, "onnx", pixels)
    assert check.same_predictions and check.max_difference < 1e-4 and check.images == 300

    onnx = Predictor.load(out)  # by its suffix: onnxruntime
    assert isinstance(onnx.backend, OnnxBackend) and onnx.checkpoint is None
    torch_predictor = Predictor.from_checkpoint(tiny_run / "best.pt")
    assert onnx.classes == checkpoint.classes and onnx.dataset == "mnist" == checkpoint.dataset
    for batch in (1, 37, 300):  # the batch size is not baked into the graph
        got, want = onnx.predict(pixels[:batch]), torch_predictor.predict(pixels[:batch])
        assert got.shape == (batch, 10) and torch.equal(got.argmax(1), want.argmax(1))
        assert torch.allclose(got, want, atol=1e-4)


def test_an_onnx_export_knows_its_data_set_and_so_its_preprocessing(tmp_path):
    import dataclasses

    from digitlab.checkpoints.format import Checkpoint
    from digitlab.data import FASHION_MNIST
    from digitlab.models import create_model

    model = create_model("mlp").eval()
    checkpoint = Checkpoint(model_name="mlp", model_args={}, state_dict=model.state_dict())
    checkpoint = dataclasses.replace(checkpoint, classes=list(FASHION_MNIST.classes),
                                     dataset=FASHION_MNIST.name, mean=0.286, std=0.353)
    export_model(model, checkpoint, tmp_path / "fashion.onnx", "onnx", torch.rand(8, 28, 28))
    onnx = Predictor.load(tmp_path / "fashion.onnx")
    assert onnx.dataset == "fashion-mnist" and onnx.pipeline == "product" and not onnx.reads_digits
    assert onnx.classes[7] == "Sneaker"


def test_torchscript_export_takes_uint8_pixels_and_keeps_the_class_names(tiny_run, digits, tmp_path):
    pixels, _ = digits
    model, checkpoint = load_model(tiny_run / "best.pt")
    out = tmp_path / "model.pt"
    export_model(model, checkpoint, out, "torchscript", pixels, input_dtype="uint8")
    files = {"classes.json": ""}
    scripted = torch.jit.load(str(out), _extra_files=files)
    assert json.loads(files["classes.json"]) == checkpoint.classes
    raw = (pixels * 255).round().to(torch.uint8)
    want = Predictor.from_checkpoint(tiny_run / "best.pt").predict(pixels)
    assert torch.equal(scripted(raw).argmax(1), want.argmax(1))


def test_an_export_that_disagrees_is_refused_and_nothing_is_written(tiny_run, digits, tmp_path,
                                                                    monkeypatch):
    from digitlab.export import exporter as export

    pixels, _ = digits
    model, checkpoint = load_model(tiny_run / "best.pt")
    monkeypatch.setattr(export, "_run_torchscript", lambda path, x: torch.rand(len(x), 10))
    out = tmp_path / "model.pt"
    with pytest.raises(ExportError, match="does not reproduce PyTorch"):
        export_model(model, checkpoint, out, "torchscript", pixels)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DigitlabError, match="unknown export format"):
        export_model(model, checkpoint, out, "tflite", pixels)


def test_cli_exports_and_classifies_with_onnxruntime(tiny_run, mnist_root, tmp_path, capsys):
    from PIL import Image

    from digitlab.cli import main

    out = tmp_path / "m.onnx"
    assert main(["export", str(tiny_run / "best.pt"), "--format", "onnx", "--out", str(out),
                 "--check-limit", "200", "--data-dir", str(mnist_root)]) == 0
    assert "same predictions as PyTorch on 200 test digits" in capsys.readouterr().out
    images, _ = load_split(mnist_root, train=False, limit=3)
    for i, image in enumerate(images):
        Image.fromarray(image.numpy()).save(tmp_path / f"{i}.png")
    answers = {}
    for backend, model in (("torch", tiny_run / "best.pt"), ("onnxruntime", out)):
        assert main(["classify", str(tmp_path), "--json", "--backend", backend,
                     "--model", str(model)]) == 0
        answers[backend] = [r["digit"] for r in json.loads(capsys.readouterr().out)]
    assert answers["onnxruntime"] == answers["torch"] and len(answers["torch"]) == 3
    assert main(["classify", str(tmp_path), "--backend", "onnxruntime",
                 "--model", str(tiny_run / "best.pt")]) == 1
    assert "not an ONNX model" in capsys.readouterr().err


def test_an_export_applies_the_checkpoints_temperature_like_pytorch(tiny_run, digits, tmp_path):
    import dataclasses

    from digitlab.checkpoints.format import save_checkpoint

    pixels, _ = digits
    model, checkpoint = load_model(tiny_run / "best.pt")
    save_checkpoint(tmp_path / "calibrated.pt", dataclasses.replace(checkpoint, temperature=0.5))
    export_model(model, dataclasses.replace(checkpoint, temperature=0.5), tmp_path / "m.onnx",
                 "onnx", pixels)
    raw = Predictor.from_checkpoint(tiny_run / "best.pt").predict(pixels)
    calibrated = Predictor.from_checkpoint(tmp_path / "calibrated.pt").predict(pixels)
    assert torch.allclose(calibrated, torch.softmax(raw.log() / 0.5, dim=1), atol=1e-5)
    assert torch.allclose(Predictor.load(tmp_path / "m.onnx").predict(pixels), calibrated, atol=1e-4)


def test_nan_never_passes_the_export_check(tiny_run, digits, tmp_path, monkeypatch):
    from digitlab.export import exporter as export

    pixels, _ = digits
    model, checkpoint = load_model(tiny_run / "best.pt")
    # The export gives the same winners but a NaN probability: `diff > tol` would let it pass.

    def nan_beside_pytorch(path, x):
        with torch.inference_mode():
            computed = export.Exportable(model, checkpoint.mean, checkpoint.std)(x)
        probabilities = computed.clone()  # a normal tensor, which may be written to
        probabilities[0, probabilities[0].argmax()] = float("nan")  # argmax keeps NaN's place
        return probabilities

    monkeypatch.setattr(export, "_run_torchscript", nan_beside_pytorch)
    with pytest.raises(ExportError, match="max difference nan, same predictions: True"):
        export_model(model, checkpoint, tmp_path / "model.pt", "torchscript", pixels)
    monkeypatch.undo()
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] = float("nan")  # a model in memory, never saved
    with pytest.raises(ExportError, match="the model's own probabilities are not finite"):
        export_model(model, checkpoint, tmp_path / "model.pt", "torchscript", pixels)
    assert list(tmp_path.iterdir()) == []
