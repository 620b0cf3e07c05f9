"""Searches: ranges in the spec, TPE drawing trials from them, the reference as the first trial,
median pruning on per-epoch validation accuracy, and the trainer's per-epoch hook behind it."""

import csv
import json

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from digitlab.cli import main
from digitlab.errors import ConfigError
from digitlab.studies import storage
from digitlab.studies.runner import search_data
from digitlab.studies.space import base_params, search_space
from digitlab.studies.spec import Range, build_spec, parse_vary, plan_runs, run_config
from digitlab.studies.worker import SearchSettings, WorkerSettings, work
from digitlab.training.config import DataConfig

RANGES = """
name = "ranges"
[base]
recipe = "tutorial-mlp"
epochs = 3
model_args = { hidden = [32] }
[vary]
lr = { low = 0.01, high = 3, log = true }
batch_size = { low = 16, high = 256, step = 16 }
hidden = { "1 layer" = [32], "2 layers" = [32, 16] }
"""


def spec_of(tmp_path, text=RANGES, **kwargs):
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return build_spec(str(path), **kwargs)


def test_ranges_in_the_spec_and_on_the_command_line(tmp_path):
    spec = spec_of(tmp_path)
    assert spec.factors[0].range == Range(0.01, 3, log=True) and spec.factors[0].values == ()
    assert spec.factors[1].range == Range(16, 256, step=16) and spec.factors[1].range.integer
    assert search_space(spec) == {
        "lr": FloatDistribution(0.01, 3, log=True),
        "batch_size": IntDistribution(16, 256, step=16),
        "hidden": CategoricalDistribution(["1 layer", "2 layers"]),
    }
    lr, batch = parse_vary(["lr=0.01..3:log", "batch-size=16..256"])
    assert lr.range == Range(0.01, 3, log=True) and batch.name == "batch_size"
    assert batch.range == Range(16, 256) and parse_vary(["lr=0.1,1"])[0].range is None
    # an int range of a float setting draws floats
    assert search_space(build_spec(None, vary=["lr=1..3"]))["lr"] == FloatDistribution(1, 3)
    # the base (lr 1.0, batch 64, one layer of 32) is a point of the space: the first trial
    assert base_params(spec, run_config(spec, (), None, "cpu")) == {
        "lr": 1.0, "batch_size": 64, "hidden": "1 layer"}
    assert base_params(spec, run_config(build_spec(None, vary=["lr=2..3"]), (), None, "cpu")) is None


@pytest.mark.parametrize(("text", "message"), [
    ("lr = { low = 3, high = 1 }", "the range's low (3) must be below its high (1)"),
    ("lr = { low = 0, high = 1, log = true }", "a log range needs low > 0 and no step"),
    ("lr = { low = 'a', high = 1 }", "a range is {low = N, high = N}"),
    ("lr = { low = 0.1, high = 1, step = -1 }", "the range's step must be positive"),
])
def test_range_mistakes_are_one_line_errors(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        spec_of(tmp_path, f"[vary]\n{text}\n")


def test_a_plan_cannot_hold_a_range_nor_a_search_several_seeds(tmp_path):
    with pytest.raises(ConfigError, match="lr, batch_size are ranges, which a search draws from"):
        plan_runs(spec_of(tmp_path))
    common = ["--out", str(tmp_path / "s"), "--data-dir", str(tmp_path), "--search", "tpe"]
    assert main(["study", "--vary", "lr=0.1..1", "--seeds", "1", "2", *common]) == 1
    assert main(["study", "--vary", "lr=0.1,1", "--grid", *common]) == 1
    assert main(["study", "--vary", "lr=0.1..1", "--train-limit", "3000", *common]) == 1
    with pytest.raises(ConfigError, match="give --val-split N"):
        search_data(DataConfig(root=tmp_path, train_limit=5000))
    assert search_data(DataConfig(root=tmp_path)).val_split == 5000


def test_a_search_end_to_end(tmp_path, mnist_root, capsys):
    out = tmp_path / "search"
    args = ["study", str(tmp_path / "spec.toml"), "--search", "tpe", "--trials", "4", "--epochs", "2",
            "--train-limit", "700", "--val-split", "200", "--test-limit", "300", "--out", str(out),
            "--data-dir", str(mnist_root), "--device", "cpu", "--jobs", "1"]
    spec_of(tmp_path)
    assert main(args) == 0
    assert "search ranges: 4 trials" in capsys.readouterr().out
    trials = sorted(optuna.load_study(study_name="ranges-search", storage=storage.default_storage(out))
                    .get_trials(), key=lambda t: t.number)
    assert len(trials) == 4 and trials[0].params == {"lr": 1.0, "batch_size": 64, "hidden": "1 layer"}
    assert trials[0].user_attrs["run"] == "reference" and trials[3].user_attrs["run"] == "trial-003"
    for trial in trials[1:]:
        config = json.loads((out / trial.user_attrs["run"] / "config.json").read_text())
        assert config["lr"] == trial.params["lr"] and config["batch_size"] == trial.params["batch_size"]
        assert config["data"]["val_split"] == 200
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert len(rows) == 4 and all(0 < float(r["val_accuracy"]) <= 1 for r in rows)
    assert (out / "search.png").stat().st_size > 10_000
    assert main(args) == 0  # the study holds its 4 trials: nothing more to train
    assert "nothing to train" in capsys.readouterr().err


def test_a_trial_below_the_median_is_pruned_after_an_epoch(tmp_path, mnist_root):
    """Five earlier trials reached 99% validation accuracy at every epoch; a new one on 600
    images cannot, so the median rule stops it after its first epoch, its folder resumable."""
    spec = spec_of(tmp_path)
    url = storage.default_storage(tmp_path / "study")
    study, _ = storage.create_or_join(url, "ranges-search", "search", heartbeat=10)
    space = search_space(spec)
    for lr in (0.5, 0.8, 1.0, 1.5, 2.0):
        study.add_trial(create_trial(state=TrialState.COMPLETE, value=0.99, distributions=space,
                                     params={"lr": lr, "batch_size": 64, "hidden": "1 layer"},
                                     intermediate_values={1: 0.99, 2: 0.99, 3: 0.99}))
    data = DataConfig(root=mnist_root, train_limit=600, test_limit=200, val_split=100)
    settings = WorkerSettings(url, "ranges-search", tmp_path / "study", data, device="cpu",
                              search=SearchSettings(trials=6, seed=0), spec=spec)
    assert [o.status for o in work(settings)] == ["pruned"]
    trial = study.get_trials()[-1]
    assert trial.state == TrialState.PRUNED and list(trial.intermediate_values) == [1]
    run = tmp_path / "study" / "trial-005"
    assert len(json.loads((run / "metrics.json").read_text())["epochs"]) == 1
    assert (run / "last.pt").is_file() and trial.user_attrs["record"]["metrics.json"]["epochs_done"] == 1


def test_draws_that_cannot_train_count_and_fail_in_one_line(tmp_path, capsys):
    """Every draw of a negative weight decay fails before training: the search stops at its
    trials rather than drawing forever, and says why."""
    args = ["study", "--vary", "weight_decay=-2..-1", "--search", "tpe", "--trials", "2",
            "--out", str(tmp_path / "s"), "--data-dir", str(tmp_path), "--device", "cpu",
            "--jobs", "1"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("--weight-decay must be at least 0") >= 2
    assert "digitlab: error: run trial-001 failed: ConfigError: study vary-weight_decay-" in err


def test_a_search_can_rank_and_prune_by_real_folders(tmp_path, mnist_root, capsys):
    """--select-by real: each trial's objective (per epoch, for the pruner, and at its end) is
    the mean accuracy on the --val-real folders; no validation split is held out for it."""
    from digitlab import data as datasets
    from tests.training.test_real_folders import write_folder

    x, y = datasets.load_split(mnist_root, train=False, limit=20)
    mine = write_folder(tmp_path / "mine", x, y, crop=False)
    out = tmp_path / "search"
    spec_of(tmp_path)
    assert main(["study", str(tmp_path / "spec.toml"), "--search", "tpe", "--trials", "2",
                 "--epochs", "2", "--train-limit", "500", "--test-limit", "200", "--out", str(out),
                 "--val-real", str(mine), "--select-by", "real", "--data-dir", str(mnist_root),
                 "--device", "cpu", "--jobs", "1"]) == 0
    assert "best by real accuracy" in capsys.readouterr().out
    trials = optuna.load_study(study_name="ranges-search",
                               storage=storage.default_storage(out)).get_trials()
    for trial in trials:
        metrics = json.loads((out / trial.user_attrs["run"] / "metrics.json").read_text())
        per_epoch = {e["epoch"]: e["real_mean"] for e in metrics["epochs"]}
        assert trial.intermediate_values == per_epoch and trial.value == per_epoch[2]
        data = json.loads((out / trial.user_attrs["run"] / "config.json").read_text())["data"]
        assert data["select_by"] == "real" and data["val_split"] == 0
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert sorted(float(r["real_accuracy"]) for r in rows) == sorted(t.value for t in trials)
    assert "mean real-folder accuracy" in (out / "summary.md").read_text()
    with pytest.raises(ConfigError, match="a search never picks by the test set"):
        search_data(DataConfig(root=tmp_path, select_by="test"))
