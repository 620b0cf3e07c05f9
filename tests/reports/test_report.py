"""`digitlab report`: the numbers on constructed cases, the files from a tiny run, the page offline
in a real browser."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from digitlab.cli import main
from digitlab.errors import DigitlabError
from digitlab.reports.calibration import expected_calibration_error, reliability
from digitlab.reports.evaluation import evaluate_checkpoint
from digitlab.reports.html import write_html_report
from digitlab.reports.metrics import per_class_report
from digitlab.reports.plots import plot_digits, plot_reliability
from digitlab.reports.report import build_report, find_confused_pairs, find_mistakes, load_wild
from digitlab.training.config import DataConfig
from digitlab.training.packing import pack_checkpoint

CHROMIUM = Path("/usr/bin/chromium")


def rows_with_confidence(confidence: float, predicted: int, n: int = 10, classes: int = 10) -> torch.Tensor:
    """`n` probability rows whose top class is `predicted` with probability `confidence`."""
    rest = (1 - confidence) / (classes - 1)
    rows = torch.full((n, classes), rest, dtype=torch.float64)
    rows[:, predicted] = confidence
    return rows


def test_per_class_precision_recall_f1_from_a_confusion():
    confusion = torch.tensor([[5, 1, 0], [2, 3, 0], [0, 0, 4]])
    report = {r["class"]: r for r in per_class_report(confusion, ["a", "b", "c"])}
    precision, recall = 5 / 7, 5 / 6
    assert report["a"]["precision"] == pytest.approx(precision, abs=1e-6)
    assert report["a"]["recall"] == pytest.approx(recall, abs=1e-6)
    assert report["a"]["f1"] == pytest.approx(2 * precision * recall / (precision + recall), abs=1e-6)
    assert report["b"]["precision"] == pytest.approx(3 / 4) and report["b"]["recall"] == pytest.approx(3 / 5)
    assert report["c"] == {"class": "c", "support": 4, "accuracy": 1.0, "precision": 1.0, "recall": 1.0,
                           "f1": 1.0}


def test_ece_is_zero_when_calibrated_and_the_gap_when_overconfident():
    # Two bins, each right exactly as often as it is confident: 8 of 10 at 0.8, 6 of 10 at 0.6.
    probabilities = torch.cat([rows_with_confidence(0.8, 3), rows_with_confidence(0.6, 5)])
    labels = torch.tensor([3] * 8 + [0] * 2 + [5] * 6 + [1] * 4)
    assert expected_calibration_error(probabilities, labels) == pytest.approx(0.0, abs=1e-12)
    # 99% sure, right half the time: ECE is the whole gap.
    overconfident = rows_with_confidence(0.99, 7, n=20)
    labels = torch.tensor([7] * 10 + [2] * 10)
    result = reliability(overconfident, labels)
    assert result.ece == pytest.approx(0.49)
    assert sum(result.counts) == 20 and result.counts[-1] == 20 and len(result.counts) == 15


def test_ece_matches_a_direct_computation():
    generator = torch.Generator().manual_seed(0)
    probabilities = torch.softmax(3 * torch.randn(2000, 10, generator=generator), dim=1)
    labels = torch.randint(0, 10, (2000,), generator=generator)
    confidence, predicted = probabilities.max(dim=1)
    correct = (predicted == labels).numpy()
    confidence_np = confidence.double().numpy()
    expected = 0.0
    for lo, hi in zip(np.linspace(0, 1, 16)[:-1], np.linspace(0, 1, 16)[1:], strict=True):
        in_bin = (confidence_np > lo) & (confidence_np <= hi)
        if in_bin.any():
            expected += in_bin.mean() * abs(correct[in_bin].mean() - confidence_np[in_bin].mean())
    assert expected_calibration_error(probabilities, labels) == pytest.approx(expected, rel=1e-9)


def test_mistakes_most_confident_first_and_the_confused_pairs():
    classes = [str(i) for i in range(10)]
    probabilities = torch.cat([rows_with_confidence(c, p, n=1)
                               for c, p in [(0.9, 1), (0.7, 1), (0.95, 2), (0.6, 3), (0.99, 4)]])
    labels = torch.tensor([7, 7, 5, 3, 4])  # three mistakes: 7→1 (twice), 5→2
    mistakes, total = find_mistakes(probabilities.log(), labels, classes, limit=2)
    assert total == 3
    assert [(m.index, m.true, m.predicted) for m in mistakes] == [(2, "5", "2"), (0, "7", "1")]
    assert mistakes[0].confidence == pytest.approx(0.95)
    confusion = torch.zeros(10, 10, dtype=torch.long)
    for t, p in [(7, 1), (7, 1), (5, 2), (3, 3), (4, 4)]:
        confusion[t, p] += 1
    pairs = find_confused_pairs(confusion, probabilities.log(), labels, classes)
    assert [(p.true, p.predicted, p.count) for p in pairs] == [("7", "1", 2), ("5", "2", 1)]
    assert [e.index for e in pairs[0].examples] == [0, 1]


def test_reliability_and_digit_figures():
    probabilities = torch.cat([rows_with_confidence(0.8, 3), rows_with_confidence(0.35, 5)])
    labels = torch.tensor([3] * 5 + [0] * 5 + [5] * 10)
    fig = plot_reliability([("before", reliability(probabilities, labels)),
                            ("after", reliability(probabilities, torch.full((20,), 3)))])
    assert len(fig.axes) == 4 and "ECE" in fig.axes[0].get_title()
    digits = plot_digits([np.zeros((28, 28), np.uint8)] * 3, ["7→1 90%", "a", "b"], "title", per_row=2)
    assert len(fig.axes) == 4 and len(digits.axes) == 4 and digits.axes[0].get_title() == "7→1 90%"


def write_wild(path: Path) -> Path:
    results = {"number": {"robust": {"accuracy": 0.9, "n": 10, "digit_accuracy": 0.95}},
               "canvas": {"naive": {"accuracy": 0.5, "n": 20, "below_threshold": 3},
                          "robust": {"accuracy": 0.75, "n": 20, "below_threshold": 1}}}
    path.write_text(json.dumps({"model": None, "seed": 0, "results": results}))
    return path


def test_wild_results_explicit_or_found_beside_the_checkpoint(tmp_path):
    checkpoint = tmp_path / "model.pt"
    assert load_wild(None, checkpoint) == (None, None)
    (tmp_path / "in_the_wild.json").write_text('{"results": {"canvas": {"robust": {"n": 3}}}}')
    assert load_wild(None, checkpoint) == (None, None)  # malformed beside: ignored with a warning
    with pytest.raises(DigitlabError, match="not the JSON of benchmarks/in_the_wild.py"):
        load_wild(tmp_path / "in_the_wild.json", checkpoint)  # malformed and asked for: an error
    write_wild(tmp_path / "in_the_wild.json")
    results, source = load_wild(None, checkpoint)
    assert source == str(tmp_path / "in_the_wild.json") and results["results"]["number"]["robust"]["n"] == 10


@pytest.fixture(scope="module")
def report_dir(tiny_run: Path, mnist_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report of the tiny run's best.pt (500 test digits, 1,000 validation digits)."""
    out = tmp_path_factory.mktemp("report")
    wild = write_wild(tmp_path_factory.mktemp("wild") / "wild.json")
    report = build_report(tiny_run / "best.pt", DataConfig(root=mnist_root, test_limit=500),
                          device="cpu", wild=wild, validation_size=1000)
    write_html_report(report, out)
    return out


def test_report_files_and_numbers(report_dir, tiny_run, mnist_root):
    assert {p.name for p in report_dir.iterdir()} == {
        "report.html", "report.json", "confusion.png", "reliability.png", "curves.png", "mistakes.png"}
    numbers = json.loads((report_dir / "report.json").read_text())
    direct = evaluate_checkpoint(tiny_run / "best.pt", DataConfig(root=mnist_root, test_limit=500), "cpu")
    assert numbers["test"]["accuracy"] == direct.stats.accuracy and numbers["test"]["total"] == 500
    assert numbers["test"]["test_loss"] == pytest.approx(direct.stats.loss, rel=1e-6)
    cal = numbers["calibration"]
    assert cal["validation_start"] == 59_000 and cal["validation_size"] == 1000
    assert cal["held_out"] is True  # the tiny run trained on the first 3,000 images only
    assert 0 < cal["temperature"] < 10 and cal["validation_nll_scaled"] <= cal["validation_nll"] + 1e-9
    assert 0 <= cal["test_ece"] <= 1 and sum(cal["test"]["counts"]) == 500
    mistakes = numbers["mistakes"]
    assert mistakes["total"] == 500 - numbers["test"]["correct"]
    shown = [m["confidence"] for m in mistakes["most_confident"]]
    assert len(shown) == min(100, mistakes["total"]) and shown == sorted(shown, reverse=True)
    assert numbers["in_the_wild"]["results"]["canvas"]["robust"]["accuracy"] == 0.75
    page = (report_dir / "report.html").read_text()
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "75.00%" in page and "Training curves are not available" not in page


def test_cli_report_of_a_packed_model_without_a_run_folder(tiny_run, mnist_root, tmp_path, capsys):
    model = tmp_path / "packed" / "model.pt"
    pack_checkpoint(tiny_run / "best.pt", model)  # no history, a training record beside it
    code = main(["report", str(model), "--test-limit", "300", "--data-dir", str(mnist_root),
                 "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0 and "test accuracy" in out and "temperature" in out
    report_dir = model.parent / "report"
    assert str(report_dir / "report.html") in out and not (report_dir / "curves.png").exists()
    numbers = json.loads((report_dir / "report.json").read_text())
    assert numbers["calibration"]["held_out"] is None and numbers["calibration"]["validation_size"] == 5000
    record = json.loads(model.with_suffix(".json").read_text())
    assert numbers["training"] == {"curves": False, "record": record}
    page = (report_dir / "report.html").read_text()
    assert "Training curves are not available" in page and "in_the_wild.py --model" in page


@pytest.mark.parametrize("setup, match", [
    ("missing", "does not exist"),
    ("foreign", "not a loadable PyTorch checkpoint"),
    ("wild", "--wild"),
])
def test_bad_input_is_one_line(setup, match, tmp_path, tiny_run, capsys):
    checkpoint, extra = tmp_path / "model.pt", []
    if setup == "foreign":
        checkpoint.write_text("not a checkpoint")
    if setup == "wild":
        checkpoint, extra = tiny_run / "best.pt", ["--wild", str(tmp_path / "none.json")]
    code = main(["report", str(checkpoint), "--out", str(tmp_path / "out"), *extra])
    err = capsys.readouterr().err
    assert code == 1 and match in err and err.count("\n") == 1 and err.startswith("digitlab: error:")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no browser: {CHROMIUM} is missing "
                    "(apt-get install chromium)")
def test_report_opens_offline_in_chromium(report_dir):
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless"])
        context = browser.new_context(offline=True)
        context.route(lambda url: not url.startswith(("file:", "data:")), lambda route: route.abort())
        page = context.new_page()
        page.on("request", lambda request: requests.append(request.url))
        page.goto((report_dir / "report.html").as_uri(), wait_until="load")
        widths = page.evaluate("""() => ({
            confusion: document.getElementById('confusion').naturalWidth,
            reliability: document.getElementById('reliability').naturalWidth,
            curves: document.getElementById('curves').naturalWidth,
            gallery: [...document.querySelectorAll('img.mistake')].map(i => i.naturalWidth),
            pairs: [...document.querySelectorAll('img.pair')].map(i => i.naturalWidth),
        })""")
        browser.close()
    assert widths["confusion"] > 0 and widths["reliability"] > 0 and widths["curves"] > 0
    assert widths["gallery"] and all(w == 84 for w in widths["gallery"] + widths["pairs"])
    network = [u for u in requests if not u.startswith(("file:", "data:"))]
    assert not network, network


@pytest.mark.parametrize("data, held_out", [
    ({}, False),  # trained on all 60,000: it saw 55,000-59,999
    ({"train_limit": 55_000}, True),
    ({"val_split": 5000}, True),  # held out exactly the report's validation images
    ({"val_split": 4000}, False),
    ({"train_limit": 30_000, "val_split": 1000}, True),
    ({"train_limit": 58_000, "val_split": 2000}, False),
])
def test_the_report_knows_whether_the_run_held_its_validation_images_out(data, held_out):
    from digitlab.reports.report import validation_held_out
    from digitlab.training.config import DataConfig, TrainConfig
    from digitlab.training.runs import RunRecord

    run = RunRecord(path=Path("run"), config=TrainConfig(recipe="tutorial", model="cnn"),
                    data=DataConfig(root=Path("data"), **data))
    assert validation_held_out(run, 55_000, 60_000) is held_out
    assert validation_held_out(None, 55_000, 60_000) is None


def test_pack_calibrate_stores_the_temperature_and_a_repack_keeps_the_record(
        tiny_run, mnist_root, tmp_path, capsys):
    from digitlab.checkpoints.format import load_checkpoint

    packed = tmp_path / "model.pt"
    code = main(["pack", str(tiny_run / "best.pt"), "--out", str(packed), "--calibrate",
                 "--data-dir", str(mnist_root), "--device", "cpu"])
    assert code == 0 and "temperature" in capsys.readouterr().out
    record = json.loads(packed.with_suffix(".json").read_text())
    fit = record["calibration"]
    assert fit["held_out"] is True  # the tiny run trained on the first 3,000 images
    assert fit["validation"] == "mnist training images 55000-59999"
    assert fit["nll_after"] <= fit["nll_before"] and fit["temperature"] != 1.0
    assert load_checkpoint(packed).temperature == pytest.approx(fit["temperature"])

    again = tmp_path / "again" / "copy.pt"
    again.parent.mkdir()
    assert main(["pack", str(packed), "--out", str(again)]) == 0
    copied = json.loads(again.with_suffix(".json").read_text())
    assert copied["file"] == "copy.pt" and copied["calibration"] == fit
    assert copied["recipe"] == record["recipe"] and copied["train_seconds"] == record["train_seconds"] > 0
    assert load_checkpoint(again).temperature == load_checkpoint(packed).temperature
