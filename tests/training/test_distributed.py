"""Multi-process training: torchrun with 2 CPU processes (gloo) on loopback, end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from digitlab.checkpoints.format import load_model
from digitlab.models import create_model
from digitlab.training.distributed import Distributed, weights_checksum

TRAIN = ["train", "--recipe", "tutorial-mlp", "--epochs", "2", "--train-limit", "4000",
         "--test-limit", "2000", "--device", "cpu", "--no-progress"]

# Run under torchrun in place of `-m digitlab`: on the job's first attempt, rank 1 is killed
# (SIGKILL, as the OOM killer or a lost machine would) after one step of epoch 2, once rank 0
# has saved epoch 1; torchrun then restarts both ranks with the same command.
KILL_RANK_1 = '''
import os, signal, sys
from digitlab.training import trainer
real, calls = trainer.train_one_epoch, []

def train_one_epoch(model, batches, optimizer, **kw):
    calls.append(1)
    if (len(calls) == 2 and os.environ["RANK"] == "1"
            and os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"):
        def one_batch_then_killed():
            yield next(iter(batches))
            os.kill(os.getpid(), signal.SIGKILL)
        return real(model, one_batch_then_killed(), optimizer, **kw)
    return real(model, batches, optimizer, **kw)

trainer.train_one_epoch = train_one_epoch
from digitlab.cli import main
sys.exit(main(sys.argv[1:]))
'''


def torchrun(*args: str, timeout: int = 280) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", *args]
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:  # say where it stuck
        stderr = e.stderr.decode() if isinstance(e.stderr, bytes) else str(e.stderr)
        pytest.fail(f"torchrun ran past {timeout} s; its stderr ends:\n{stderr[-4000:]}")


@pytest.fixture(scope="module")
def uninterrupted(mnist_root: Path, tmp_path_factory: pytest.TempPathFactory):
    run_dir = tmp_path_factory.mktemp("ddp") / "run"
    done = torchrun("-m", "digitlab", *TRAIN, "--data-dir", str(mnist_root), "--out", str(run_dir))
    assert done.returncode == 0, done.stderr[-3000:]
    return run_dir, done


def test_a_single_process_is_rank_0_of_1_and_changes_nothing():
    single = Distributed()
    model = create_model("mlp")
    assert not single.enabled and single.is_main
    assert single.wrap(model) is model and single.broadcast("x") == "x" and single.gather(3) == [3]
    assert single.sync_batchnorm(model, torch.device("cuda")) is model


def test_batch_norm_is_synchronised_under_ddp_on_cuda_only():
    two = Distributed(rank=0, world_size=2)
    bncnn = create_model("bncnn")
    assert two.sync_batchnorm(bncnn, torch.device("cpu")) is bncnn  # PyTorch's runs on GPUs only
    converted = two.sync_batchnorm(create_model("bncnn"), torch.device("cuda"))
    kinds = {type(m) for m in converted.modules()}
    assert nn.SyncBatchNorm in kinds and nn.BatchNorm2d not in kinds
    assert list(converted.state_dict()) == list(bncnn.state_dict())  # checkpoints unchanged
    mlp = create_model("mlp")
    assert two.sync_batchnorm(mlp, torch.device("cuda")) is mlp  # nothing to synchronise


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
def test_torchrun_with_two_processes_trains_one_model(uninterrupted):
    run_dir, done = uninterrupted
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


@pytest.mark.faults
@pytest.mark.timeout(300)
def test_a_killed_rank_is_restarted_by_torchrun_and_the_job_resumes(uninterrupted, mnist_root,
                                                                     tmp_path):
    script = tmp_path / "kill_rank_1.py"
    script.write_text(KILL_RANK_1)
    run_dir = tmp_path / "run"
    done = torchrun("--max-restarts", "1", str(script), *TRAIN, "--data-dir", str(mnist_root),
                    "--out", str(run_dir), timeout=250)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "(exitcode: -9) local_rank: 1" in done.stderr  # torchrun saw rank 1 killed
    assert f"resuming {run_dir} after epoch 1" in done.stderr  # continued, not started again
    assert done.stdout.count("test accuracy") == 1

    metrics = json.loads((run_dir / "metrics.json").read_text())
    straight = json.loads((uninterrupted[0] / "metrics.json").read_text())
    assert metrics["ranks_agree"] and metrics["rank_checksums"] == straight["rank_checksums"]
    assert [e["accuracy"] for e in metrics["epochs"]] == [e["accuracy"] for e in straight["epochs"]]
    assert metrics["train"] == straight["train"]
    assert not list(run_dir.glob(".*.tmp"))
