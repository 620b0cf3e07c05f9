"""`classify`'s inputs: folders and globs expanded, one result per file in order, errors kept apart."""

import json

from PIL import Image

from digitlab.reading.files import classify_files, expand_inputs
from digitlab.reading.predictor import Predictor


def test_expand_inputs_handles_files_folders_and_globs(tmp_path):
    for name in ("b.png", "a.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert expand_inputs([str(tmp_path)]) == [str(tmp_path / "a.jpg"), str(tmp_path / "b.png")]
    assert expand_inputs([str(tmp_path / "*.png")]) == [str(tmp_path / "b.png")]
    assert expand_inputs(["missing.png"]) == ["missing.png"]


def test_classify_files_keeps_order_and_isolates_errors(tiny_run, tmp_path):
    Image.new("L", (28, 28)).save(tmp_path / "blank.png")
    predictor = Predictor.from_checkpoint(tiny_run / "best.pt")
    results = classify_files(predictor, [str(tmp_path / "gone.png"), str(tmp_path / "blank.png")], top_k=2)
    gone, blank = (r.to_dict() for r in results)
    assert gone == {"path": str(tmp_path / "gone.png"), "error": results[0].error}
    assert "no such file" in gone["error"] and blank["path"].endswith("blank.png")
    assert blank["no_digit"] and blank["digit"] is None and "reason" in blank
    assert "preprocess" in blank and "probabilities" not in blank  # no ink: nothing classified
    json.dumps([r.to_dict() for r in results])  # JSON-ready as they are
