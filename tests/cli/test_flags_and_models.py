"""Global flags anywhere, `default` for the shipped model, model files recognised by their bytes,
quiet exports, and the in-the-wild benchmark from the command line."""

import json
import shutil

import pytest
from PIL import Image, ImageDraw

from digitlab.checkpoints.shipped import DEFAULT_MODEL, model_format
from digitlab.cli import build_parser, main


@pytest.fixture(scope="module")
def seven(tmp_path_factory):
    path = tmp_path_factory.mktemp("images") / "seven.png"
    image = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(image).line([(50, 40), (150, 40), (90, 170)], fill=0, width=14)
    image.save(path)
    return path


@pytest.mark.parametrize("argv", [["-q", "classify", "x.png"], ["classify", "-q", "x.png"],
                                  ["classify", "x.png", "--quiet"]])
def test_quiet_before_or_after_the_subcommand(argv):
    args = build_parser().parse_args(argv)
    assert args.quiet and not args.verbose and args.images == ["x.png"]


def test_verbose_after_the_subcommand_and_neither_flag():
    assert build_parser().parse_args(["evaluate", "default", "-v"]).verbose
    args = build_parser().parse_args(["evaluate", "default"])
    assert not args.quiet and not args.verbose


def test_classify_dash_q_after_the_subcommand_runs(capsys, seven):
    assert main(["classify", "-q", str(seven)]) == 0
    assert capsys.readouterr().out.startswith(f"{seven}: 7 ")


@pytest.fixture(scope="module")
def exports(mnist_root, tmp_path_factory):
    """The shipped model exported to ONNX and TorchScript, under names that say nothing."""
    folder = tmp_path_factory.mktemp("exports")
    for fmt in ("onnx", "torchscript"):
        assert main(["export", "default", "--format", fmt, "--out", str(folder / f"{fmt}.bin"),
                     "--check-limit", "100", "--data-dir", str(mnist_root)]) == 0
    return folder


def test_exports_are_recognised_by_their_bytes(exports):
    assert model_format(exports / "onnx.bin") == "onnx"
    assert model_format(exports / "torchscript.bin") == "torchscript"
    assert model_format(DEFAULT_MODEL) == model_format("default") == "checkpoint"


def test_the_export_keeps_its_library_chatter_out_of_the_way(mnist_root, tmp_path, capfd):
    assert main(["export", "default", "--format", "onnx", "--out", str(tmp_path / "m.onnx"),
                 "--check-limit", "50", "--data-dir", str(mnist_root)]) == 0
    out, err = capfd.readouterr()
    assert out.startswith("wrote ") and len(out.splitlines()) == 1 and err == ""


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_classify_picks_the_backend_from_the_model_file(capsys, seven, exports, fmt):
    assert main(["classify", str(seven), "--json", "--model", str(exports / f"{fmt}.bin")]) == 0
    got = json.loads(capsys.readouterr().out)[0]
    assert main(["classify", str(seven), "--json", "--model", "default"]) == 0
    want = json.loads(capsys.readouterr().out)[0]
    assert got["digit"] == want["digit"] == 7
    assert got["confidence"] == pytest.approx(want["confidence"], abs=1e-4)


def test_an_export_given_where_a_checkpoint_is_needed_says_so(capsys, exports):
    assert main(["evaluate", str(exports / "onnx.bin")]) == 1
    err = capsys.readouterr().err
    assert "is an export (ONNX), not a checkpoint" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("name", ["default", "shipped"])
def test_evaluate_default_writes_into_the_current_folder(capsys, mnist_root, tmp_path, monkeypatch,
                                                         name):
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", name, "--test-limit", "300", "--data-dir", str(mnist_root)]) == 0
    assert "accuracy" in capsys.readouterr().out
    report = json.loads((tmp_path / "evaluation" / "report.json").read_text())
    assert report["total"] == 300 and report["accuracy"] > 0.97



@pytest.mark.slow
def test_bench_wild_writes_what_the_report_reads(capsys, mnist_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "wild", "--per-condition", "4", "--conditions", "canvas", "number",
                 "--data-dir", str(mnist_root), "--json", "in_the_wild.json"]) == 0
    out = capsys.readouterr().out
    assert "canvas" in out and "number" in out
    results = json.loads((tmp_path / "in_the_wild.json").read_text())["results"]
    assert results["canvas"]["robust"]["n"] == 4 and results["number"]["robust"]["n"] == 4
    shutil.copy(tmp_path / "in_the_wild.json", tmp_path / "copy.json")
    assert main(["report", "default", "--test-limit", "200", "--data-dir", str(mnist_root),
                 "--wild", "copy.json"]) == 0
    page = (tmp_path / "report" / "report.html").read_text()
    assert "copy.json" in page and "canvas" in page


def test_pack_default_and_serve_settings_take_the_name(capsys, tmp_path):
    assert main(["pack", "default", "--out", str(tmp_path / "copy.pt")]) == 0
    assert "wrote" in capsys.readouterr().out and (tmp_path / "copy.pt").is_file()
    from digitlab.predicting.predictor import Predictor

    assert Predictor.load("shipped").source == str(DEFAULT_MODEL)
