"""Fault injection on training: a diverging run, a process killed while saving, a damaged
last.pt and conflicting flags on --resume each end in one clear line, and nothing is lost."""

import json
import subprocess
import sys

import pytest
import torch

from digitlab.checkpoints.format import load_checkpoint
from digitlab.cli import main
from tests.faults.test_model_faults import flip_bits_inside_a_tensor, one_line_error

pytestmark = pytest.mark.faults

# Runs `digitlab ARGS` with torch.save dying on its Nth call: it writes the whole file under its
# temporary name, cuts it to half (what a kill mid-write leaves) and SIGKILLs its own process.
DIES_WHILE_SAVING = '''
import os, signal, sys
import torch
real, calls = torch.save, []

def save(obj, f, *args, **kwargs):
    calls.append(f)
    real(obj, f, *args, **kwargs)
    if len(calls) == int(sys.argv[1]):
        with open(f, "r+b") as half:
            half.truncate(os.path.getsize(f) // 2)
        os.kill(os.getpid(), signal.SIGKILL)

torch.save = save
from digitlab.cli import main
sys.exit(main(sys.argv[2:]))
'''


def train_args(mnist_root, out, *more):
    return ["train", "--recipe", "tutorial-mlp", "--epochs", "2", "--batch-size", "32",
            "--train-limit", "640", "--test-limit", "500", "--device", "cpu", "--no-progress",
            "--data-dir", str(mnist_root), "--out", str(out), *more]


def test_a_diverging_run_exits_1_in_one_line_and_writes_no_checkpoint(mnist_root, tmp_path, capsys):
    run = tmp_path / "D"
    line = one_line_error(capsys, "train", "--recipe", "tutorial-mlp", "--lr", "1e30", "--epochs",
                          "1", "--train-limit", "3000", "--out", run, "--data-dir", mnist_root,
                          "--no-progress")
    assert line.startswith("digitlab: error: training diverged in epoch 1 at batch ")
    assert "the loss is nan" in line and "lower --lr" in line
    assert not (run / "best.pt").exists() and not (run / "last.pt").exists()


def test_a_process_killed_while_saving_resumes_and_leaves_nothing_behind(mnist_root, tmp_path):
    script = tmp_path / "dies_while_saving.py"
    script.write_text(DIES_WHILE_SAVING)

    def train(out, die_at_save):  # each in a fresh process, so all run on the same threads
        return subprocess.run([sys.executable, str(script), str(die_at_save),
                               *train_args(mnist_root, out)],
                              capture_output=True, text=True, timeout=240)

    straight, run = tmp_path / "straight", tmp_path / "run"
    assert train(straight, 0).returncode == 0
    # saves: epoch 1 last.pt (1), best.pt (2); epoch 2 last.pt (3): killed inside it
    killed = train(run, 3)
    assert killed.returncode == -9, killed.stderr[-2000:]
    left = list(run.glob(".last.pt.*.tmp"))
    assert len(left) == 1 and left[0].stat().st_size > 0  # what the kill left behind
    assert load_checkpoint(run / "last.pt").epoch == 1  # the finished epoch is intact

    resumed = train(run, 0)  # the same command continues the run
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert not list(run.glob(".*.tmp"))
    a, b = load_checkpoint(straight / "last.pt"), load_checkpoint(run / "last.pt")
    assert b.epoch == 2 and all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    measured = ("epoch", "samples", "train_loss", "test_loss", "accuracy", "lr")  # not timings
    histories = [json.loads((folder / "metrics.json").read_text()) for folder in (straight, run)]
    first, second = ([{k: e[k] for k in measured} for e in h["epochs"]] for h in histories)
    assert first == second and histories[0]["train"] == histories[1]["train"]


def test_a_damaged_last_pt_is_refused_on_resume_and_left_as_it_was(mnist_root, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(train_args(mnist_root, run, "--epochs", "1")) == 0
    flip_bits_inside_a_tensor(run / "last.pt", name="fc1.weight")
    before = (run / "last.pt").read_bytes()
    line = one_line_error(capsys, "train", "--resume", run, "--epochs", "2", "--no-progress")
    assert f"{run / 'last.pt'} is damaged" in line
    assert (run / "last.pt").read_bytes() == before


def test_resume_with_conflicting_flags_names_them_and_epochs_trains_further(mnist_root, tmp_path,
                                                                             capsys):
    run = tmp_path / "run"
    assert main(train_args(mnist_root, run, "--epochs", "1")) == 0
    line = one_line_error(capsys, "train", "--resume", run, "--lr", "0.5", "--recipe", "fast",
                          "--train-limit", "320", "--no-progress")
    for named in ("recipe 'tutorial-mlp' → 'fast'", "lr 1.0 → 0.5", "data.train_limit 640 → 320"):
        assert named in line
    line = one_line_error(capsys, "train", "--resume", run, "--out", tmp_path / "other")
    assert "continues that folder in place" in line

    assert main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 0
    assert "after 2 epoch(s)" in capsys.readouterr().out
    assert json.loads((run / "config.json").read_text())["epochs"] == 2
    line = one_line_error(capsys, "train", *train_args(mnist_root, run)[1:-2], "--out", run,
                          "--optimizer", "sgd")
    assert "optimizer 'adadelta' → 'sgd'" in line and "--resume" in line
