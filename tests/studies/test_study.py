import csv
import dataclasses
import json

import pytest
import torch

from digitlab.cli import main
from digitlab.errors import ConfigError
from digitlab.models import create_model
from digitlab.studies.spec import build_spec, load_spec, parse_vary, plan_runs
from digitlab.studies.worker import run_state
from digitlab.training.config import DataConfig, TrainConfig
from digitlab.training.engine import train_one_epoch
from tests.training.test_engine import fake_loader

SMALL = """
name = "small"
[base]
recipe = "tutorial-mlp"
epochs = 3
model_args = { hidden = [32] }
[vary]
hidden = { "2 layers" = [32, 16] }
lr = [0.5, 1.0]
"""


def write(tmp_path, text, name="spec.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_shipped_part2_study_covers_the_tutorials_factors():
    spec = load_spec("part2")
    assert spec.recipe == "tutorial-mlp" and spec.mode == "one-at-a-time"
    assert {f.name for f in spec.factors} == {"hidden", "activation", "loss", "batch_size", "epochs",
                                              "lr", "weight_decay"}
    runs = {r.name: r for r in plan_runs(spec)}
    assert len(runs) == 13 and next(iter(runs)) == "reference"
    assert runs["reference"].config.model == "mlp" and runs["reference"].config.epochs == 5
    assert runs["hidden-5-layers"].config.model_args["hidden"] == [128] * 5
    assert runs["activation-tanh"].config.model_args == {"hidden": [128], "activation": "tanh"}
    assert runs["loss-MSE-on-one-hot"].config.loss == "mse"
    assert runs["batch_size-16"].config.batch_size == 16 and runs["lr-10.0"].config.lr == 10.0
    assert runs["epochs-25"].config.epochs == 25
    short = {r.name: r.config.epochs for r in plan_runs(spec, epochs=2)}
    assert short["reference"] == short["lr-0.1"] == 2 and short["epochs-25"] == 10  # ratio kept


def test_a_study_file_by_path_and_the_command_line_factors(tmp_path):
    spec = build_spec(str(write(tmp_path, SMALL)), vary=["lr=0.1,2"], seeds=[1, 2])
    assert spec.name == "small" and [v for _, v in spec.factors[-1].values] == [0.1, 2]
    names = [r.name for r in plan_runs(spec)]
    assert names == ["reference-seed1", "hidden-2-layers-seed1", "lr-0.1-seed1", "lr-2-seed1",
                     "reference-seed2", "hidden-2-layers-seed2", "lr-0.1-seed2", "lr-2-seed2"]
    grid = plan_runs(build_spec(str(write(tmp_path, SMALL)), grid=True))
    assert len(grid) == 1 + 2  # reference + 1 hidden value × 2 learning rates
    assert dict(grid[1].settings) == {"hidden": "2 layers", "lr": "0.5"}


def test_vary_alone_uses_the_default_base_and_parses_lists():
    spec = build_spec(None, vary=["hidden=[64,32],[16]", "activation=tanh"])
    assert spec.recipe == "tutorial-mlp"
    assert spec.factors[0].values == (("64-32", [64, 32]), ("16", [16]))
    assert parse_vary(["batch-size=16, 256"])[0].name == "batch_size"


def test_yaml_specs(tmp_path):
    pytest.importorskip("yaml")
    path = write(tmp_path, "name: y\nbase: {epochs: 2}\nvary:\n  lr: [0.1, 10]\n", "s.yaml")
    assert [r.config.lr for r in plan_runs(load_spec(path))] == [1.0, 0.1, 10]


@pytest.mark.parametrize(("text", "message"), [
    (None, "no study file"),
    ("name = [", "not valid TOML"),
    ("[vary]\nmomentum = [0.9]", "unknown factor 'momentum'"),
    ("[vary]\nlr = []", "factor 'lr' has no values"),
    ("[vary]\nlr = [-1.0]", "--lr must be positive"),
    ("[vary]\nbatch_size = [0]", "--batch-size must be at least 1"),
    ("[vary]\nlr = ['fast']", "'fast' is not a float"),
    ("[vary]\nactivation = ['swish']", "activation must be one of"),
    ("[vary]\nloss = ['hinge']", "--loss must be nll (cross-entropy) or mse"),
    ("mode = 'random'", "study mode must be one of"),
    ("[base]\nlearning_rate = 1", "unknown base setting"),
    ("[vary]\ndevice = ['cpu']", "unknown factor 'device'"),
])
def test_spec_mistakes_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "missing.toml" if text is None else write(tmp_path, text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        plan_runs(build_spec(str(path)))
    assert "\n" not in str(error.value)


def test_the_loss_setting_and_old_configs():
    assert TrainConfig.from_dict({"recipe": "tutorial", "model": "cnn"}).loss == "nll"
    assert TrainConfig(recipe="r", model="mlp", loss="cross-entropy").loss == "nll"


def test_mse_on_one_hot_targets_trains():
    torch.manual_seed(0)
    model = create_model("mlp")
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    loader = fake_loader()
    losses = []
    for epoch in range(4):
        loader.set_epoch(epoch)
        losses.append(train_one_epoch(model, loader, optimizer, progress=False, loss="mse").loss)
    assert losses[0] < 0.1 and losses[-1] < losses[0] / 3  # mean over 10 cells per image


def test_run_state_finished_resumable_changed(mnist_root, tmp_path):
    spec = build_spec(None, vary=["lr=0.5"], recipe="tutorial-mlp")
    run = plan_runs(spec, epochs=2, device="cpu")[0]
    data = DataConfig(root=mnist_root, train_limit=300, test_limit=100)
    folder = tmp_path / "run"
    assert run_state(run.config, data, folder) == "new"
    from digitlab.training.trainer import train

    train(run.config, data, folder)
    assert run_state(run.config, data, folder) == "finished"
    assert run_state(run.config, dataclasses.replace(data, train_limit=200), folder) == "changed"
    assert run_state(dataclasses.replace(run.config, lr=2.0), data, folder) == "changed"
    metrics = json.loads((folder / "metrics.json").read_text())
    (folder / "metrics.json").write_text(json.dumps({**metrics, "epochs": metrics["epochs"][:1]}))
    assert run_state(run.config, data, folder) == "resume"
    (folder / "last.pt").unlink()
    assert run_state(run.config, data, folder) == "new"


def study_args(spec, out, root, *extra):
    return ["study", str(spec), "--epochs", "1", "--train-limit", "500", "--test-limit", "200",
            "--out", str(out), "--data-dir", str(root), "--device", "cpu", *extra]


def test_a_reduced_study_end_to_end_and_not_redone(mnist_root, tmp_path, capsys):
    out = tmp_path / "study"
    assert main(study_args(write(tmp_path, SMALL), out, mnist_root, "--jobs", "2")) == 0
    printed = capsys.readouterr().out
    assert "study small: 3 runs" in printed and " 1. " in printed and " 3. " in printed
    assert (out / "hidden.png").stat().st_size > 10_000 and (out / "lr.png").is_file()
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["run"] for r in rows] == ["reference", "hidden-2-layers", "lr-0.5"]  # lr 1.0 = base
    assert rows[1]["factor"] == "hidden" and rows[1]["value"] == "2 layers"
    assert int(rows[0]["parameters"]) == 784 * 32 + 32 + 32 * 10 + 10
    assert all(0.3 < float(r["final_accuracy"]) <= 1 and float(r["images_per_s"]) > 0 for r in rows)
    markdown = (out / "summary.md").read_text()
    assert "## Ranking by final test accuracy" in markdown and "| hidden-2-layers | hidden |" in markdown
    assert json.loads((out / "lr-0.5" / "config.json").read_text())["lr"] == 0.5

    stamps = {r["run"]: (out / r["run"] / "last.pt").stat().st_mtime_ns for r in rows}
    assert main(study_args(write(tmp_path, SMALL), out, mnist_root, "--jobs", "2")) == 0
    assert "0 of 3 run(s) enqueued (the others have trials)" in capsys.readouterr().err
    assert stamps == {r: (out / r / "last.pt").stat().st_mtime_ns for r in stamps}


def test_a_failed_run_is_reported_and_the_others_continue(mnist_root, tmp_path, capsys, monkeypatch):
    from digitlab.training import trainer

    real = trainer.train

    def flaky(config, data, run_dir, resume=False, **hooks):
        if config.lr == 0.5:
            raise RuntimeError("simulated\nfailure")
        return real(config, data, run_dir, resume, **hooks)

    monkeypatch.setattr(trainer, "train", flaky)
    out = tmp_path / "study"
    assert main(study_args(write(tmp_path, SMALL), out, mnist_root, "--jobs", "1")) == 1
    err = capsys.readouterr().err
    assert "digitlab: error: run lr-0.5 failed: RuntimeError: simulated failure" in err
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["run"] for r in rows] == ["reference", "hidden-2-layers"]
    assert "Not finished (failed or not run yet): lr-0.5" in (out / "summary.md").read_text()


def test_a_study_picking_by_real_folders_ranks_by_them(tmp_path):
    """Records judged by --val-real: with --select-by real the ranking goes by the folders'
    final mean accuracy (here the reverse of the test set's order), else by test accuracy."""
    from digitlab.studies import summary
    from digitlab.training.runs import EpochRecord, History, RunRecord

    plan = plan_runs(build_spec(None, vary=["lr=0.5"]), epochs=1)
    records = {}
    for run, (test, real) in zip(plan, [(0.9, 0.6), (0.8, 0.7)], strict=True):
        last = EpochRecord(epoch=1, samples=10, train_loss=1.0, test_loss=1.0, accuracy=test,
                           lr=1.0, seconds=1.0, images_per_s=10.0, real={"mine": real},
                           real_mean=real)
        records[run.name] = RunRecord(path=tmp_path / run.name, config=run.config,
                                      history=History(epochs=[last]))
    by_real = summary.summarise(plan, records, "real")
    assert [r["variant"] for r in by_real.ranking] == ["lr=0.5", "reference"]
    assert by_real.ranking[0]["vs_reference"] == pytest.approx(0.1)
    assert [r["final_real"] for r in by_real.rows] == [0.6, 0.7]
    assert "lr=0.5" in summary.format_ranking(by_real).splitlines()[0]
    markdown = summary.format_markdown(build_spec(None, vary=["lr=0.5"]), plan, by_real)
    assert "## Ranking by final mean real-folder accuracy" in markdown
    by_test = summary.summarise(plan, records)
    assert [r["variant"] for r in by_test.ranking] == ["reference", "lr=0.5"]
    assert "| rank | variant | final accuracy |" in summary.format_markdown(
        build_spec(None, vary=["lr=0.5"]), plan, by_test)
