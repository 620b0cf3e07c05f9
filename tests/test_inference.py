import torch
from PIL import Image

from digitlab.inference import Predictor, expand_inputs


def test_expand_inputs_handles_files_folders_and_globs(tmp_path):
    for name in ("b.png", "a.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert expand_inputs([str(tmp_path)]) == [str(tmp_path / "a.jpg"), str(tmp_path / "b.png")]
    assert expand_inputs([str(tmp_path / "*.png")]) == [str(tmp_path / "b.png")]
    assert expand_inputs(["missing.png"]) == ["missing.png"]


def test_predictor_reads_mnist_digits(tiny_run, mnist_root):
    from digitlab.data import load_split

    predictor = Predictor.from_checkpoint(tiny_run / "best.pt")
    images, labels = load_split(mnist_root, train=False, limit=500)
    probabilities = predictor.predict(images.float() / 255)
    assert probabilities.shape == (500, 10)
    assert (probabilities.argmax(1) == labels).float().mean() > 0.85


def test_classify_files_keeps_order_and_isolates_errors(tiny_run, tmp_path):
    Image.new("L", (28, 28)).save(tmp_path / "ok.png")
    predictor = Predictor.from_checkpoint(tiny_run / "best.pt")
    results = predictor.classify_files([str(tmp_path / "gone.png"), str(tmp_path / "ok.png")], 2)
    assert "no such file" in results[0]["error"] and results[1]["path"].endswith("ok.png")
    assert len(results[1]["top_k"]) == 2 and torch.isclose(
        torch.tensor(sum(results[1]["probabilities"])), torch.tensor(1.0), atol=1e-4)
