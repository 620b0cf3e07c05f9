"""Workers sharing one study, as users start them: every run trained exactly once, whichever
process took it, with the results one process gets alone; a dead worker's run retried and
resumed from its last.pt."""

import json
import os
import signal
import time

from digitlab.studies.storage import engine_url
from digitlab.studies.trials import record_of
from tests.studies.conftest import (
    SIX_NAMES,
    epochs_of,
    load_trials,
    run_workers,
    start,
    study_command,
    trainings,
)


def check_trained_once(trials, out):
    """One complete trial per planned run, each run folder trained once; any other trial
    trained nothing (a worker that found the queue empty, or a twin from a concurrent enqueue)."""
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert sorted(t.user_attrs["run"] for t in complete) == sorted(SIX_NAMES)
    assert all(t.user_attrs["status"] in ("idle", "duplicate") for t in trials if t not in complete)
    assert {name: trainings(out / name) for name in SIX_NAMES} == dict.fromkeys(SIX_NAMES, 1)
    return {t.user_attrs["run"]: epochs_of(record_of(t)) for t in complete}


def test_two_workers_share_one_sqlite_study(six_runs, tmp_path, mnist_root, single_process):
    out = tmp_path / "study"
    outputs = run_workers([study_command(six_runs, out, mnist_root)] * 2, tmp_path)
    trials = load_trials(f"sqlite:///{out / 'study.db'}", "six")
    assert check_trained_once(trials, out) == single_process  # same seeds, same accuracies
    for output in outputs:  # each waits for the other, then ranks the whole study from the storage
        assert "study six: 6 runs" in output and " 6. " in output
    assert "## Trials in the storage" in (out / "summary.md").read_text()


def test_two_workers_share_one_postgresql_study(postgres_url, six_runs, tmp_path, mnist_root,
                                                single_process):
    out = tmp_path / "study"
    command = study_command(six_runs, out, mnist_root, "--storage", postgres_url)
    outputs = run_workers([command] * 2, tmp_path)
    trials = load_trials(engine_url(postgres_url), "six")
    assert check_trained_once(trials, out) == single_process
    assert not (out / "study.db").exists()
    assert all("trials in postgresql://digitlab@127.0.0.1" in output for output in outputs)


def test_a_dead_workers_run_is_retried_and_resumes(tmp_path, mnist_root):
    spec = tmp_path / "long.toml"
    spec.write_text('name = "long"\n[base]\nrecipe = "tutorial-mlp"\nepochs = 3\n')
    out, run_dir = tmp_path / "study", tmp_path / "study" / "reference"
    command = study_command(spec, out, mnist_root, "--train-limit", "8000", "--heartbeat", "1")
    first = start(command, tmp_path / "first.log")
    deadline = time.monotonic() + 240
    while not (run_dir / "metrics.json").exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(first.pid, signal.SIGKILL)  # after its first epoch: no goodbye to the storage
    first.wait()
    done_before = len(json.loads((run_dir / "metrics.json").read_text())["epochs"])
    assert 1 <= done_before < 3, (tmp_path / "first.log").read_text()

    output = run_workers([command], tmp_path)[0]  # waits until the dead one's heartbeat is stale
    dead, retry = load_trials(f"sqlite:///{out / 'study.db'}", "long")
    assert dead.state.name == "FAIL" and "error" not in dead.user_attrs
    assert retry.state.name == "COMPLETE" and retry.user_attrs["status"] == "resumed"
    assert retry.system_attrs["failed_trial"] == dead.number and "reference: resumed" in output
    assert sorted(retry.intermediate_values) == [1, 2, 3]
    assert [e["epoch"] for e in json.loads((run_dir / "metrics.json").read_text())["epochs"]] == [1, 2, 3]
    assert "resuming" in (run_dir / "train.log").read_text() and trainings(run_dir) == 2
