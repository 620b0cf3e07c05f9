"""`classify`'s results files against awkward names, damaged files, two writers at once, a
killed parent and a --jobs typo: every file stays parseable, nothing is doubled or lost, and
no worker outlives the command."""

from __future__ import annotations

import csv
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from digitlab.cli import main
from digitlab.cli.reading import worker_count
from tests.faults.test_model_faults import one_line_error
from tests.service.helpers import SRC

pytestmark = pytest.mark.faults

NOT_UTF8 = os.fsdecode(b"seven-\xff\xfe.png")  # a name from a Latin-1 camera, say
CARRIAGE = "two\rlines.png"


@pytest.fixture
def awkward(tmp_path: Path) -> Path:
    """A folder of three small pictures: a plain name, one not UTF-8, one with a carriage return."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("plain.png", NOT_UTF8, CARRIAGE):
        Image.new("L", (28, 28)).save(folder / name, format="PNG")
    return folder


def classify(folder: Path, *more: str) -> int:
    return main(["classify", str(folder), "--jobs", "1", *more])


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_awkward_names_are_written_escaped_and_resumed_without_duplicates(awkward, tmp_path, capsys, fmt):
    results = tmp_path / f"results.{fmt}"
    assert classify(awkward, f"--{fmt}", "--resume", str(results)) == 0
    assert classify(awkward, f"--{fmt}", "--resume", str(results)) == 0  # all done: nothing added
    assert "3 already in" in capsys.readouterr().err
    with open(results, encoding="utf-8", newline="") as f:  # valid UTF-8 throughout
        if fmt == "csv":
            paths = [row[0] for row in list(csv.reader(f, strict=True))[1:]]
        else:
            paths = [json.loads(line)["path"] for line in f]
    assert sorted(Path(p).name for p in paths) == sorted(["plain.png", "seven-\\xff\\xfe.png", CARRIAGE])


def test_a_jsonl_line_cut_short_is_refused_naming_it(awkward, tmp_path, capsys):
    results = tmp_path / "results.jsonl"
    assert classify(awkward, "--jsonl", "--resume", str(results)) == 0
    lines = results.read_text().splitlines(keepends=True)
    after_path = lines[1].index('", "') + 8  # the path whole, the rest of the record cut off
    lines[1] = lines[1][:after_path] + "\n"
    results.write_text("".join(lines))
    line = one_line_error(capsys, "classify", awkward, "--resume", results)
    assert f"{results}: line 2 is not a record" in line


def test_an_unclosed_quote_in_a_csv_is_refused_naming_it(awkward, tmp_path, capsys):
    results = tmp_path / "results.csv"
    assert classify(awkward, "--csv", "--resume", str(results)) == 0
    lines = results.read_text().splitlines(keepends=True)
    lines[1] = '"' + lines[1]
    results.write_text("".join(lines))
    line = one_line_error(capsys, "classify", awkward, "--csv", "--resume", results)
    assert f"{results}: line 2 is not a record" in line


def test_a_second_writer_is_refused_in_one_line(awkward, tmp_path, capsys):
    results = tmp_path / "results.jsonl"
    with open(results, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running classify holds it
        line = one_line_error(capsys, "classify", awkward, "--resume", results)
    assert "another classify is writing this file" in line
    assert results.read_text() == ""


def test_jobs_are_capped_at_a_multiple_of_the_cores():
    assert worker_count(1000, None) <= 4 * (os.cpu_count() or 1)


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_classify_workers_stop_when_classify_is_killed(awkward, sig):
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "digitlab", "-q", "classify", "--from-file", "-", "--jobs", "2",
               "--jsonl"]
    parent = subprocess.Popen(command, env=environment, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    workers: list[int] = []
    try:
        assert parent.stdin is not None
        parent.stdin.write(f"{awkward / 'plain.png'}\n".encode())
        parent.stdin.flush()  # the list stays open: classify waits for more, its workers with it
        deadline = time.monotonic() + 120
        while len(workers) < 2 and time.monotonic() < deadline:
            children = Path(f"/proc/{parent.pid}/task/{parent.pid}/children")
            workers = [int(p) for p in children.read_text().split()] if children.exists() else []
            time.sleep(0.2)
        assert len(workers) >= 2, "classify started no workers"
        os.kill(parent.pid, sig)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 20
        while any(alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(alive(w) for w in workers), "classify's workers outlived it"
    finally:
        for pid in [parent.pid, *workers]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        parent.wait()
