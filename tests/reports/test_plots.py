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
