"""`digitlab classify` at scale: JSON lines and CSV as images are read, a file written whole,
--resume after a real interruption, recursive folders and path lists, workers, a GPU."""

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from digitlab.cli import main
from tests.drawing import DIGITS, digit_image


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def draw_folder(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        paths.append(folder / f"{i:04d}-{DIGITS[i % len(DIGITS)]}.png")
        digit_image(DIGITS[i % len(DIGITS)], size=40 + 4 * (i % 7)).save(paths[-1])
    return paths


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Seventy drawn digits and one file that is not an image."""
    root = tmp_path_factory.mktemp("digits")
    draw_folder(root, 70)
    (root / "0035-broken.png").write_text("not an image")
    return root


def test_json_lines_csv_and_the_json_array_agree(capsys, folder):
    code, out, err = run(capsys, "classify", folder, "--jsonl", "--top-k", "2")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 1 and len(lines) == 71 and err.count("digitlab: error:") == 1  # the broken file
    assert [r["path"] for r in lines] == sorted(str(p) for p in folder.iterdir())
    broken = next(r for r in lines if r["path"].endswith("broken.png"))
    assert "not an image" in broken["error"] and len(lines[0]["top_k"]) == 2
    assert sum(r.get("digit") == int(Path(r["path"]).stem[-1]) for r in lines if "digit" in r) >= 60
    code, out, _ = run(capsys, "classify", folder, "--json", "--top-k", "2")
    assert json.loads(out) == lines
    code, out, _ = run(capsys, "classify", folder, "--csv", "--jobs", "1")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["path"], r["digit"]) for r in rows] == [(x["path"], str(x.get("digit", ""))) for x in lines]


def test_an_output_file_appears_whole_or_not_at_all(capsys, folder, tmp_path, monkeypatch):
    code, out, _ = run(capsys, "classify", folder, "--jsonl")
    assert run(capsys, "classify", folder, "--jsonl", "--output", tmp_path / "out.jsonl")[0] == 1
    assert (tmp_path / "out.jsonl").read_text() == out and os.listdir(tmp_path) == ["out.jsonl"]

    from digitlab.batch import stream

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(stream, "_classify", interrupted)
    code, _, err = run(capsys, "classify", folder, "--csv", "--output", tmp_path / "sub" / "out.csv")
    assert code == 130 and "interrupted" in err
    assert os.listdir(tmp_path) == ["out.jsonl"]  # no out.csv, no temporary file, no folder


def test_paths_from_a_list_or_stdin_and_folders_recursively(capsys, folder, tmp_path, monkeypatch):
    paths = sorted(str(p) for p in folder.iterdir())[:5]
    (tmp_path / "list.txt").write_text("\n".join(paths[:3]) + "\n\n")
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(paths[3:]) + "\n"))
    _, out, _ = run(capsys, "classify", "--from-file", tmp_path / "list.txt", "--jsonl")
    assert [json.loads(line)["path"] for line in out.splitlines()] == paths[:3]
    _, out, _ = run(capsys, "classify", paths[0], "--from-file", "-", "--jsonl", "--jobs", "2")
    assert [json.loads(line)["path"] for line in out.splitlines()] == [paths[0], *paths[3:]]

    nested = tmp_path / "nested"
    draw_folder(nested / "b" / "c", 2)
    draw_folder(nested / "a", 1)
    _, out, _ = run(capsys, "classify", nested, "--recursive", "--jsonl")
    assert [Path(json.loads(line)["path"]).relative_to(nested).parts[:-1] for line in out.splitlines()] \
        == [("a",), ("b", "c"), ("b", "c")]
    code, _, err = run(capsys, "classify", nested, "--jsonl")
    assert code == 0 and "images in" not in err  # no image directly in it: nothing read


def test_resume_after_a_real_interruption_gives_the_same_file(tmp_path):
    """Kill a run (SIGKILL, mid-write if it so happens) once it has written some lines, run the
    same command again: the file is byte for byte the one an uninterrupted run writes."""
    images = tmp_path / "images"
    draw_folder(images, 600)
    command = [sys.executable, "-m", "digitlab", "classify", str(images), "--top-k", "2"]
    subprocess.run([*command, "--jsonl", "--output", str(tmp_path / "whole.jsonl")], check=True,
                   capture_output=True)
    resumed = tmp_path / "resumed.jsonl"
    first = subprocess.Popen([*command, "--resume", str(resumed), "--jobs", "1"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while (not resumed.exists() or resumed.stat().st_size == 0) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert first.poll() is None, "the first run ended before it could be interrupted"
    first.send_signal(signal.SIGKILL)
    first.wait()
    partial = resumed.read_text().count("\n")
    assert 0 < partial < 600
    result = subprocess.run([*command, "--resume", str(resumed)], capture_output=True, text=True)
    assert result.returncode == 0 and f"{partial} already in {resumed} skipped" in result.stderr
    assert resumed.read_bytes() == (tmp_path / "whole.jsonl").read_bytes()
    again = subprocess.run([*command, "--resume", str(resumed)], capture_output=True, text=True)
    assert again.returncode == 0 and "0 images in" in again.stderr  # nothing left to do
    assert resumed.read_bytes() == (tmp_path / "whole.jsonl").read_bytes()


def test_resume_in_csv_after_an_unfinished_line(capsys, folder, tmp_path):
    _, whole, _ = run(capsys, "classify", folder, "--csv")
    out = tmp_path / "out.csv"
    out.write_text(whole[: whole.index("\n", len(whole) // 2) + 20])  # 20 bytes into a row
    code, _, err = run(capsys, "classify", folder, "--csv", "--resume", out)
    assert code == 1 and out.read_text() == whole and "already in" in err


def test_flags_that_cannot_go_together_are_refused_in_one_line(capsys, folder, tmp_path):
    for argv, message in (
        (["--json", "--resume", tmp_path / "x.json"], "--resume needs --jsonl or --csv"),
        (["--resume", tmp_path / "x.jsonl", "--output", tmp_path / "y"], "drop --output"),
        (["--from-file", tmp_path / "missing.txt"], "--from-file"),
    ):
        code, _, err = run(capsys, "classify", folder, *argv)
        assert code == 1 and err.strip().startswith("digitlab: error:") and message in err, err
    code, _, err = run(capsys, "classify")
    assert code == 1 and "give images, folders or globs" in err


def test_a_progress_bar_on_a_terminal_only(capsys, folder, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    _, out, err = run(capsys, "classify", folder, "--jsonl", "--jobs", "1")
    assert "71/71" in err and "image/s" in err and len(out.splitlines()) == 71
    _, _, err = run(capsys, "-q", "classify", folder, "--jsonl", "--jobs", "1")
    assert "71/71" not in err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_classify_on_the_gpu_reads_what_the_cpu_reads(capsys, folder):
    _, on_cpu, _ = run(capsys, "classify", folder, "--jsonl", "--device", "cpu")
    code, on_gpu, _ = run(capsys, "classify", folder, "--jsonl", "--device", "cuda")
    cpu, gpu = ([json.loads(line) for line in text.splitlines()] for text in (on_cpu, on_gpu))
    assert code == 1 and [r.get("digit") for r in gpu] == [r.get("digit") for r in cpu]
    for a, b in zip(cpu, gpu, strict=True):
        if "probabilities" in a:
            assert max(abs(x - y) for x, y in zip(a["probabilities"], b["probabilities"], strict=True)) < 1e-4


def test_asking_for_a_gpu_that_is_not_there_is_one_line(capsys, folder, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, err = run(capsys, "classify", folder, "--device", "cuda")
    assert code == 1 and "--device cuda was asked for but is not available" in err
