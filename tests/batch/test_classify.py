"""`classify`'s inputs: folders (recursively), globs and path lists expanded in a stable order;
one result per file in order, errors kept apart."""

import io
import json
import os

import pytest
from PIL import Image

from digitlab.batch.classify import classify_files, expand_inputs
from digitlab.batch.inputs import InputProblem, iter_inputs, read_path_list
from digitlab.predicting.predictor import Predictor


def test_expand_inputs_handles_files_folders_and_globs(tmp_path):
    for name in ("b.png", "a.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert expand_inputs([str(tmp_path)]) == [str(tmp_path / "a.jpg"), str(tmp_path / "b.png")]
    assert expand_inputs([str(tmp_path / "*.png")]) == [str(tmp_path / "b.png")]
    assert expand_inputs(["missing.png"]) == ["missing.png"]


def test_folders_are_read_recursively_in_name_order_when_asked(tmp_path):
    for name in ("b.png", "a/z.PNG", "a/deeper/y.jpg", "c/x.webp", "c/readme.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "c" / "loop").symlink_to(tmp_path, target_is_directory=True)  # never followed
    relative = [os.path.relpath(p, tmp_path) for p in expand_inputs([str(tmp_path)], recursive=True)]
    assert relative == ["a/deeper/y.jpg", "a/z.PNG", "b.png", "c/x.webp"]
    assert expand_inputs([str(tmp_path)]) == [str(tmp_path / "b.png")]  # not recursive: this folder only
    (tmp_path / "c" / "loop").unlink()  # glob's ** follows links: that is glob's business
    assert expand_inputs([str(tmp_path / "**" / "*.png")]) == [str(tmp_path / "b.png")]
    assert len(expand_inputs([str(tmp_path / "**" / "*.*")])) == 5  # a glob takes what it matches


def test_a_folder_that_cannot_be_listed_is_an_error_in_its_place(tmp_path, monkeypatch):
    (tmp_path / "ok.png").write_bytes(b"x")
    locked = tmp_path / "locked"
    locked.mkdir()
    scandir = os.scandir

    def refuse(path):  # root reads any folder: refuse as the kernel would for anyone else
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse)
    items = list(iter_inputs([str(locked), str(tmp_path / "ok.png")]))
    assert items[1] == str(tmp_path / "ok.png")
    assert isinstance(items[0], InputProblem)
    assert items[0].error == f"{locked}: cannot list this folder (Permission denied)"


def test_path_lists_are_read_lazily_without_blank_lines():
    stream = io.StringIO("a.png\n\nb c.png\r\n  \nd.png")
    paths = read_path_list(stream)
    assert next(paths) == "a.png" and stream.tell() < len(stream.getvalue())  # not read to the end
    assert list(paths) == ["b c.png", "d.png"]


@pytest.mark.parametrize("jobs", [1, 2])
def test_classify_files_keeps_order_and_isolates_errors(tiny_run, tmp_path, jobs):
    Image.new("L", (28, 28)).save(tmp_path / "blank.png")
    predictor = Predictor.from_checkpoint(tiny_run / "best.pt")
    results = classify_files(predictor, [str(tmp_path / "gone.png"), str(tmp_path / "blank.png")],
                             top_k=2, jobs=jobs)
    gone, blank = (r.to_dict() for r in results)
    assert gone == {"path": str(tmp_path / "gone.png"), "error": results[0].error}
    assert "no such file" in gone["error"] and blank["path"].endswith("blank.png")
    assert blank["no_digit"] and blank["digit"] is None and "reason" in blank
    assert "preprocess" in blank and "probabilities" not in blank  # no ink: nothing classified
    assert results[1].image is not None and results[1].image.size == (28, 28)  # kept for pictures
    json.dumps([r.to_dict() for r in results])  # JSON-ready as they are
