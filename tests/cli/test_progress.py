"""Training into a log file: no progress-bar redraws, one line per epoch (-v: every interval)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")


def train_into_log(root, out, *flags):
    env = {**os.environ, "PYTHONPATH": SRC, "DIGITLAB_DATA": str(root)}
    command = [sys.executable, "-m", "digitlab", "train", "--model", "mlp", "--epochs", "2",
               "--train-limit", "640", "--test-limit", "200", "--device", "cpu",
               "--out", str(out), *flags]
    with open(out.parent / "train.err", "w") as log:  # a file: not a terminal
        done = subprocess.run(command, stderr=log, stdout=subprocess.DEVNULL, env=env, timeout=300)
    assert done.returncode == 0
    return (out.parent / "train.err").read_text()


@pytest.mark.slow
def test_train_into_a_log_has_one_line_per_epoch(mnist_root, tmp_path):
    log = train_into_log(mnist_root, tmp_path / "run")
    assert "\r" not in log
    epochs = [line for line in log.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == 2 and "images/s" in epochs[0] and "loss" in epochs[0]
    assert "batch" not in log

    verbose = train_into_log(mnist_root, tmp_path / "run2", "-v", "--log-interval", "5")
    batches = [line for line in verbose.splitlines() if ": batch " in line]
    assert "\r" not in verbose and len(batches) == 2 * 2  # 10 batches of 64 per epoch: 1 and 6
    assert "loss" in batches[0] and "images/s" in batches[0]
