"""Multi-process training: torchrun with 2 CPU processes (gloo) on loopback, end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from digitlab.models import create_model
from digitlab.training.checkpoint import load_model
from digitlab.training.distributed import Distributed, weights_checksum


def test_a_single_process_is_rank_0_of_1_and_changes_nothing():
    single = Distributed()
    model = create_model("mlp")
    assert not single.enabled and single.is_main
    assert single.wrap(model) is model and single.broadcast("x") == "x" and single.gather(3) == [3]


def test_the_weights_checksum_tells_equal_weights_from_different_ones():
    torch.manual_seed(0)
    a = create_model("mlp")
    b = create_model("mlp")
    b.load_state_dict(a.state_dict())
    assert weights_checksum(a) == weights_checksum(b)
    with torch.no_grad():
        next(b.parameters()).view(-1)[0] += 1e-3
    assert weights_checksum(a) != weights_checksum(b)


@pytest.mark.timeout(300)
def test_torchrun_with_two_processes_trains_one_model(mnist_root, tmp_path):
    run_dir = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "digitlab", "train", "--recipe", "tutorial-mlp", "--epochs", "2",
        "--train-limit", "4000", "--test-limit", "2000", "--device", "cpu", "--no-progress",
        "--data-dir", str(mnist_root), "--out", str(run_dir),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("test accuracy") == 1  # rank 0 alone reports

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["ranks_agree"]
    first, second = metrics["rank_checksums"]
    assert first == second  # both ranks ended with identical weights
    assert metrics["accuracy"] > 0.8  # it learned (chance is 0.1)
    # Each rank trained on its half of every epoch: 4000 images per epoch in all, not 8000.
    assert [e["samples"] for e in metrics["epochs"]] == [4000, 8000]

    # The checkpoint is the single-process format, and it holds the ranks' weights.
    model, checkpoint = load_model(run_dir / "last.pt")
    assert checkpoint.epoch == 2 and weights_checksum(model) == pytest.approx(first, rel=1e-12)
    assert (run_dir / "performance.png").is_file()
