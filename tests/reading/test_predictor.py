from PIL import Image

from digitlab.reading.predictor import Predictor, classify_files, expand_inputs


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
    Image.new("L", (28, 28)).save(tmp_path / "blank.png")
    predictor = Predictor.from_checkpoint(tiny_run / "best.pt")
    results = classify_files(predictor, [str(tmp_path / "gone.png"), str(tmp_path / "blank.png")], top_k=2)
    assert "no such file" in results[0]["error"] and results[1]["path"].endswith("blank.png")
    assert results[1]["no_digit"] and results[1]["digit"] is None and "reason" in results[1]


def test_low_confidence_is_no_digit(tiny_run, mnist_root):
    from digitlab.data import load_split

    predictor = Predictor.from_checkpoint(tiny_run / "best.pt")
    images, _ = load_split(mnist_root, train=False, limit=1)
    picture = Image.fromarray(images[0].numpy())
    sure = predictor.read_digits([picture], min_confidence=0.0)[0]
    assert sure.digit is not None and 0 < sure.confidence <= 1
    never = predictor.read_digits([picture], min_confidence=1.0)[0]
    assert never.digit is None and "below" in never.reason
    described = predictor.describe(never, top_k=3)
    assert described["no_digit"] and len(described["top_k"]) == 3  # probabilities still reported
