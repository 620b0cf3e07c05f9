"""Studies against a hostile or failing storage and careless commands: run folders only ever
inside the study folder, one study per folder, every factor honoured, settings type-checked,
lost connections waited out, damaged storage in one line."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy.exc import OperationalError

from digitlab.cli import main
from digitlab.errors import ConfigError
from digitlab.studies import runner, storage, worker
from digitlab.studies.spec import build_spec, parse_spec, plan_runs
from digitlab.studies.trials import ERROR, run_attrs
from digitlab.training.config import DataConfig

pytestmark = pytest.mark.faults


def planted(tmp_path: Path, run_names: list[str]) -> str:
    """A study whose waiting trials name the given run folders, as a hostile writer would."""
    url = storage.default_storage(tmp_path / "study")
    study, _ = storage.create_or_join(url, "planted", "plan", heartbeat=10)
    config = plan_runs(build_spec(None, vary=["lr=0.5"]))[0].config
    data = DataConfig(root=tmp_path / "data", train_limit=64, test_limit=32)
    for i, name in enumerate(run_names):
        attrs = {**run_attrs(name, (), config, data), "key": f"k{i}"}
        storage.enqueue(study, [(attrs, {}, {})])
    storage.mark_planned(study)
    return url


def test_run_names_from_the_storage_never_leave_the_study_folder(tmp_path):
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "sub" / "precious.txt").write_text("keep me")
    url = planted(tmp_path, ["../victim", str(victim), "sub/../../victim"])
    settings = worker.WorkerSettings(storage=url, study="planted", out=tmp_path / "study",
                                     data=DataConfig(root=tmp_path / "data"), device="cpu")
    worker.work(settings)
    assert sorted(p.name for p in victim.rglob("*")) == ["precious.txt", "sub"]
    optuna = storage.import_optuna()
    trials = optuna.load_study(study_name="planted", storage=url).get_trials()
    assert len(trials) == 3
    assert all("cannot name a folder" in t.user_attrs[ERROR] for t in trials)


@pytest.mark.parametrize("name", ["../../escape", "a/b", "..", "/abs", "a\nb"])
def test_a_study_name_must_be_one_folder_name(name):
    with pytest.raises(ConfigError, match="cannot name a folder"):
        parse_spec({"name": name})


def test_vary_studies_get_folders_of_their_own():
    first = runner.default_study_dir(build_spec(None, vary=["lr=0.5"]))
    second = runner.default_study_dir(build_spec(None, vary=["lr=2"]))
    assert first != second and first.name.startswith("study-vary-lr-")
    assert first == runner.default_study_dir(build_spec(None, vary=["lr=0.5"]))  # it resumes


def test_a_second_study_in_a_folder_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "_execute", lambda *args, **kwargs: [])  # nothing trains
    data = DataConfig(root=tmp_path / "data", train_limit=64, test_limit=32)
    out = tmp_path / "shared"
    runner.run_study(build_spec(None, vary=["lr=0.5"]), data, runner.StudyOptions(out=out, jobs=1))
    other = build_spec(None, vary=["lr=2"])
    with pytest.raises(ConfigError, match="belongs to study") as refused:
        runner.run_study(other, data, runner.StudyOptions(out=out, jobs=1))
    assert "\n" not in str(refused.value)
    runner.run_study(other, data, runner.StudyOptions(out=out, jobs=1, restart=True))


def test_seed_as_a_factor_plans_a_run_per_seed():
    runs = plan_runs(build_spec(None, vary=["seed=2,3"]))
    assert [(r.name, r.config.seed) for r in runs] == [("reference", 1), ("seed-2", 2), ("seed-3", 3)]


def test_base_settings_are_type_checked_when_the_spec_is_read():
    with pytest.raises(ConfigError) as refused:
        parse_spec({"base": {"model_args": "x", "batch_size": 1.5, "epochs": 1e9}})
    lines = str(refused.value).splitlines()
    assert len(lines) == 3
    assert any("model_args" in line for line in lines) and any("batch_size" in line for line in lines)
    with pytest.raises(ConfigError, match="no units"):
        plan_runs(parse_spec({"base": {"model_args": {"hidden": [0]}}}))


def test_study_jobs_are_capped_by_the_runs(tmp_path, monkeypatch):
    started = []

    class Process:
        def __init__(self, *args, **kwargs):
            self.name, self.exitcode = kwargs.get("name", "p"), 0
            started.append(self)

        def start(self):
            pass

        def join(self):
            pass

    context = SimpleNamespace(Process=Process)
    monkeypatch.setattr(runner.multiprocessing, "get_context", lambda kind: context)
    data = DataConfig(root=tmp_path / "data", train_limit=64, test_limit=32)
    spec = build_spec(None, vary=["lr=0.5"])  # two runs: the reference and lr-0.5
    runner.run_study(spec, data, runner.StudyOptions(out=tmp_path / "s", jobs=8))
    assert len(started) == 2


def test_a_lost_storage_connection_is_waited_out(tmp_path, monkeypatch, caplog):
    url = planted(tmp_path, [])
    real, failures = storage.fail_stale, [0]

    def flaky(study):
        if failures[0] < 2:
            failures[0] += 1
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))
        real(study)

    monkeypatch.setattr(storage, "fail_stale", flaky)
    monkeypatch.setattr(storage.time, "sleep", lambda s: None)
    settings = worker.WorkerSettings(storage=url, study="planted", out=tmp_path / "study",
                                     data=DataConfig(root=tmp_path / "data"), device="cpu")
    with caplog.at_level(logging.WARNING):
        assert worker.work(settings) == []
    retries = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(retries) == 2


def test_a_damaged_sqlite_storage_is_one_line_naming_the_file(tmp_path, capsys):
    spec = build_spec(None, vary=["lr=0.5"])
    out = tmp_path / "study"
    url = storage.default_storage(out)
    study, _ = storage.create_or_join(url, spec.name, "plan", heartbeat=10)
    for i in range(200):  # enough trials for the file to have many pages
        study.set_user_attr(f"padding{i}", "x" * 500)
    db = out / storage.DB_FILE
    raw = bytearray(db.read_bytes())
    rng = random.Random(0)
    for page in range(1, len(raw) // 4096):
        raw[page * 4096 + 100: page * 4096 + 400] = rng.randbytes(300)
    db.write_bytes(bytes(raw))
    code = main(["study", "--vary", "lr=0.5", "--out", str(out), "--data-dir", str(tmp_path / "d"),
                 "--device", "cpu", "--jobs", "1", "--epochs", "1"])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("digitlab: error:") and str(db) in last
