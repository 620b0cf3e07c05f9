from pathlib import Path

import numpy as np

from digitlab.reports.plots import plot_performance, save_figure
from digitlab.training.figures import plot_confusion
from digitlab.training.runs import load_run


def test_performance_plot_has_the_tutorials_two_panels(tiny_run, tmp_path):
    run = load_run(tiny_run)
    fig = plot_performance([run])
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_xlabel() == acc_ax.get_xlabel() == "training samples seen"
    assert "mlp on cpu" in fig._suptitle.get_text() and "final accuracy" in fig._suptitle.get_text()
    xs, ys = acc_ax.lines[0].get_data()
    assert list(xs) == [3000, 6000] and ys[-1] == 100 * run.history.epochs[-1].accuracy
    save_figure(fig, tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_several_runs_are_overlaid_with_a_legend(tiny_run):
    run = load_run(tiny_run)
    fig = plot_performance([run, run])
    assert len(fig.axes[1].lines) == 2 and fig.axes[1].get_legend() is not None


def test_confusion_plot_shows_counts():
    fig = plot_confusion(np.array([[5, 1], [0, 7]]), ["a", "b"])
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert texts == {"5", "1", "7"}


def test_a_run_folder_from_before_the_run_record_still_plots():
    from tests.training.test_runs import TODAY

    fig = plot_performance([load_run(TODAY)])
    assert fig._suptitle.get_text().startswith("mlp on cpu: ")
    assert list(fig.axes[0].lines[0].get_data()[0]) == [100, 200, 300, 400]
    assert fig.axes[0].get_ylabel() == "training loss (NLL)"


def judged_run(tmp_path):
    """A run judged by two real folders, as its record holds it (no training needed)."""
    from digitlab.training.config import DataConfig, TrainConfig
    from digitlab.training.runs import EpochRecord, History, RunRecord

    epochs = [EpochRecord(epoch=n, samples=100 * n, train_loss=1.0, test_loss=1.0, accuracy=0.9,
                          lr=1.0, seconds=1.0, images_per_s=10.0,
                          real={"mine": 0.5 + n / 10, "theirs": 0.4}, real_mean=(0.9 + n / 10) / 2)
              for n in (1, 2)]
    return RunRecord(path=tmp_path, config=TrainConfig(recipe="fast", model="fastcnn"),
                     data=DataConfig(root=tmp_path, val_real=("/a/mine", "/b/theirs"),
                                     select_by="real"),
                     history=History(epochs=epochs))


def test_real_folders_are_dashed_lines_beside_the_test_accuracy(tmp_path):
    fig = plot_performance([judged_run(tmp_path)])
    acc_ax = fig.axes[1]
    assert [line.get_label() for line in acc_ax.lines] == ["test", "mine", "theirs"]
    assert list(acc_ax.lines[1].get_data()[1]) == [60.0, 70.0]
    assert acc_ax.lines[1].get_linestyle() == "--" and acc_ax.get_legend() is not None


def test_the_html_report_shows_each_real_folder_at_the_checkpoints_epoch(tmp_path):
    from digitlab.reports.html import _real_folders

    page = _real_folders(judged_run(tmp_path), epoch=1)
    assert "picked by their mean accuracy" in page and "epoch 1 (this checkpoint)" in page
    assert "<td>mine</td><td>60.00%</td><td>70.00%</td>" in page
    assert _real_folders(load_run(Path(__file__).parents[1] / "training/fixtures/run-v0.1"), 2) == ""
