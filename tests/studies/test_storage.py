"""A study's storage: the plan enqueued once, params that a dashboard can plot, a run never
trained by two trials, and one-line errors for what a user can fix."""

import logging
import sys

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState
from sqlalchemy.engine import make_url

from digitlab.cli import main
from digitlab.errors import ConfigError
from digitlab.studies import storage
from digitlab.studies.runner import _plan_entries
from digitlab.studies.space import plan_params
from digitlab.studies.spec import build_spec, plan_runs
from digitlab.studies.trials import KEY, record_of, run_key
from digitlab.studies.worker import WorkerSettings, work
from digitlab.training.config import DataConfig

SMALL = """
name = "small"
[base]
recipe = "tutorial-mlp"
epochs = 1
model_args = { hidden = [32] }
[vary]
lr = [0.5, 2]
activation = ["tanh"]
batch_size = [32]
"""


def plan_of(tmp_path, text=SMALL, **kwargs):
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return plan_runs(build_spec(str(path), **kwargs), device="cpu")


def new_study(tmp_path, name="small"):
    url = storage.default_storage(tmp_path / "study")
    study, created = storage.create_or_join(url, name, "plan", heartbeat=10)
    return url, study, created


def test_plan_params_are_numbers_where_they_can_be(tmp_path):
    plan = plan_of(tmp_path, seeds=[1, 2])
    params = dict(zip([r.name for r in plan], plan_params(plan), strict=True))
    assert params["reference-seed1"] == ({"seed": 1}, {"seed": IntDistribution(1, 2)})
    values, dists = params["lr-2-seed2"]
    assert values == {"lr": 2.0, "seed": 2} and dists["lr"] == FloatDistribution(0.5, 2.0)
    assert params["batch_size-32-seed1"][1]["batch_size"] == IntDistribution(32, 32)
    assert params["activation-tanh-seed1"] == ({"activation": "tanh", "seed": 1},
                                               {"activation": CategoricalDistribution(["tanh"]),
                                                "seed": IntDistribution(1, 2)})


def test_the_plan_is_enqueued_once(tmp_path):
    data = DataConfig(root=tmp_path)
    url, study, created = new_study(tmp_path)
    assert created and not storage.create_or_join(url, "small", "plan", 10)[1]  # the second joins
    entries = _plan_entries(plan_of(tmp_path), data)
    assert storage.enqueue(study, entries) == 5 and storage.enqueue(study, entries) == 0
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert [t.user_attrs["run"] for t in waiting] == ["reference", "lr-0.5", "lr-2", "activation-tanh",
                                                      "batch_size-32"]
    assert waiting[2].params == {"lr": 2.0}
    assert waiting[2].user_attrs[KEY] == run_key(plan_of(tmp_path)[2].config, data)
    # another data setting is another run of the same name
    assert storage.enqueue(study, _plan_entries(plan_of(tmp_path), DataConfig(tmp_path, train_limit=9))) == 5


def test_a_changed_choice_list_stays_in_the_user_attributes(tmp_path, caplog):
    url, study, _ = new_study(tmp_path)
    storage.enqueue(study, _plan_entries(plan_of(tmp_path), DataConfig(root=tmp_path)))
    edited = SMALL.replace('activation = ["tanh"]', 'activation = ["tanh", "sigmoid"]')
    with caplog.at_level(logging.WARNING):
        assert storage.enqueue(study, _plan_entries(plan_of(tmp_path, edited),
                                                    DataConfig(root=tmp_path))) == 1
    assert "activation: its values changed since study small began" in caplog.text
    added = study.get_trials()[-1]
    assert added.user_attrs["run"] == "activation-sigmoid" and added.params == {}


def test_twin_trials_of_one_run_train_it_once(tmp_path, mnist_root):
    """Two processes enqueueing at the same moment may both add a run: the lower trial trains
    it, the other stands down."""
    data = DataConfig(root=mnist_root, train_limit=300, test_limit=100)
    url, study, _ = new_study(tmp_path)
    entry = _plan_entries(plan_of(tmp_path)[:1], data)[0]
    for _ in range(2):
        study.add_trial(optuna.trial.create_trial(state=TrialState.WAITING, params=entry[1],
                                                  distributions=entry[2], user_attrs=entry[0]))
    outcomes = work(WorkerSettings(url, "small", tmp_path / "study", data, device="cpu"))
    assert [(o.name, o.status) for o in outcomes] == [("reference", "trained"), ("reference", "duplicate")]
    first, second = study.get_trials()
    assert first.state == TrialState.COMPLETE and record_of(first).accuracy > 0.3
    assert second.state == TrialState.FAIL and second.user_attrs["duplicate_of"] == 0


def test_a_plan_worker_that_finds_nothing_waiting_says_so(tmp_path):
    from digitlab.studies.worker import _objective

    url, study, _ = new_study(tmp_path)
    trial = study.ask()
    with pytest.raises(Exception, match="nothing was waiting"):
        _objective(trial, WorkerSettings(url, "small", tmp_path, DataConfig(root=tmp_path)))
    assert study.get_trials()[0].user_attrs["status"] == "idle"


def test_storage_urls(tmp_path, monkeypatch):
    assert storage.default_storage(tmp_path / "s") == f"sqlite:///{tmp_path}/s/study.db"
    with pytest.raises(ConfigError, match="is not a database URL"):
        storage.engine_url("not a url")
    real = storage.importlib.util.find_spec
    monkeypatch.setattr(storage.importlib.util, "find_spec",
                        lambda name: None if name.startswith("psycopg") else real(name))
    with pytest.raises(ConfigError, match=r"pip install 'digitlab\[postgres\]'"):
        storage.engine_url("postgresql://me@db.example/studies")
    # SQLAlchemy's default driver missing, the other one installed: that one
    default = make_url("postgresql://x").get_driver_name()
    other = {"psycopg": "psycopg2", "psycopg2": "psycopg"}[default]
    monkeypatch.setattr(storage.importlib.util, "find_spec",
                        lambda name: object() if name == other else None if name == default else real(name))
    assert storage.engine_url("postgresql://me:pw@db.example/studies") == \
        f"postgresql+{other}://me:pw@db.example/studies"
    assert storage.shown("postgresql://me:pw@db.example/s") == "postgresql://me:***@db.example/s"


def test_a_study_cli_error_is_one_line(tmp_path, capsys, monkeypatch):
    args = ["study", "--vary", "lr=0.5,2", "--out", str(tmp_path / "s"), "--device", "cpu",
            "--epochs", "1", "--train-limit", "100", "--data-dir", str(tmp_path)]
    (tmp_path / "file").write_text("")
    assert main([*args, "--storage", f"sqlite:///{tmp_path}/file/study.db"]) == 1
    assert main([*args, "--storage", "postgresql://nobody@127.0.0.1:1/none"]) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and all(e.startswith("digitlab: error: ") for e in errors)
    assert "cannot open the study storage postgresql://nobody@127.0.0.1:1/none" in errors[1]
    monkeypatch.setitem(sys.modules, "optuna", None)
    assert main(args) == 1
    assert "pip install 'optuna" in capsys.readouterr().err
