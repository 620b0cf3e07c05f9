"""Study workers as users start them (`digitlab study` processes), a small six-run study, and a
real PostgreSQL server of the test's own."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# reference, lr 0.5 and 2, a second layer, batch 32 and 128: six runs
SIX_RUNS = """
name = "six"
[base]
recipe = "tutorial-mlp"
epochs = 2
model_args = { hidden = [32] }
[vary]
lr = [0.5, 2.0]
hidden = { "2 layers" = [32, 16] }
batch_size = [32, 128]
"""
SIX_NAMES = ["reference", "lr-0.5", "lr-2.0", "hidden-2-layers", "batch_size-32", "batch_size-128"]


def study_command(spec: Path | str, out: Path, root: Path, *extra: str) -> list[str]:
    """A `digitlab study` worker process on a small share of the real MNIST."""
    return [sys.executable, "-m", "digitlab", "study", str(spec), "--train-limit", "600",
            "--test-limit", "300", "--out", str(out), "--data-dir", str(root), "--device", "cpu",
            "--jobs", "1", "--threads", "1", *extra]


def start(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, cwd=ROOT)


def run_workers(commands: list[list[str]], folder: Path, timeout: float = 300) -> list[str]:
    """Start every command at once, wait for all; their outputs (each must exit 0)."""
    logs = [folder / f"worker-{i}.log" for i in range(len(commands))]
    processes = [start(c, log) for c, log in zip(commands, logs, strict=True)]
    for process in processes:
        process.wait(timeout=timeout)
    outputs = [log.read_text() for log in logs]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output
    return outputs


def trainings(run_dir: Path) -> int:
    """How many times a run folder's training started (the trainer logs it once per start)."""
    return sum(line.split(" ", 2)[-1].startswith("training ")
               for line in (run_dir / "train.log").read_text().splitlines())


def load_trials(url: str, name: str) -> list:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return sorted(optuna.load_study(study_name=name, storage=url).get_trials(), key=lambda t: t.number)


@pytest.fixture
def six_runs(tmp_path: Path) -> Path:
    path = tmp_path / "six.toml"
    path.write_text(SIX_RUNS)
    return path


@pytest.fixture(scope="session")
def single_process(mnist_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list]:
    """The six-run study trained by one `digitlab study` process: each run's per-epoch
    (test accuracy, test loss, validation accuracy)."""
    from digitlab.studies.trials import record_of

    folder = tmp_path_factory.mktemp("single")
    (folder / "six.toml").write_text(SIX_RUNS)
    run_workers([study_command(folder / "six.toml", folder / "study", mnist_root)], folder)
    trials = load_trials(f"sqlite:///{folder / 'study' / 'study.db'}", "six")
    return {t.user_attrs["run"]: epochs_of(record_of(t)) for t in trials}


def epochs_of(record) -> list:
    return [(e.accuracy, e.test_loss, e.val_accuracy) for e in record.history.epochs]


def _postgres_bin() -> Path | None:
    found = shutil.which("initdb")
    candidates = ([found] if found else []) + sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                                                     reverse=True)
    for candidate in candidates:
        path = Path(candidate).resolve()
        if os.access(path, os.X_OK) and (path.parent / "pg_ctl").is_file():
            return path.parent
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server of this test's own: a new cluster in a temporary folder, on a free
    port, stopped and removed afterwards. As root it runs as the `postgres` user."""
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("needs PostgreSQL's initdb and pg_ctl (Debian's postgresql: `make postgres`)")
    pytest.importorskip("psycopg", reason="needs psycopg: pip install 'digitlab[postgres]'")
    as_root = os.geteuid() == 0
    if as_root and (shutil.which("runuser") is None or not _has_user("postgres")):
        pytest.skip("running as root needs runuser and a postgres user to start the server")
    folder = Path(tempfile.mkdtemp(prefix="digitlab-pg-"))  # not under pytest's root-only tmp
    if as_root:
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", _free_port()

    def pg(*command: str | Path) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
        done = subprocess.run([*prefix, *map(str, command)], capture_output=True, text=True, timeout=120)
        log = folder / "server.log"
        assert done.returncode == 0, done.stdout + done.stderr + (log.read_text() if log.exists() else "")

    started = False
    try:
        pg(bindir / "initdb", "-D", data, "-U", "digitlab", "--auth=trust", "--no-locale",
           "-E", "UTF8", "--no-sync")
        pg(bindir / "pg_ctl", "-D", data, "-l", folder / "server.log", "-w", "-t", "60", "-o",
           f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        started = True
        yield f"postgresql://digitlab@127.0.0.1:{port}/postgres"
    finally:
        if started:
            pg(bindir / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def _has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
