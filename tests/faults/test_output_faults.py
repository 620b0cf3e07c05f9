"""Output-path faults become one line naming the path and the cause, exit 1, nothing half-written.

The places that refuse writes: a nearly full disk (a 256 KB tmpfs, mounted when root), a
read-only folder (chmod 555, or a read-only mount for root, who ignores modes) and a file
given where a folder should be. Each command that writes is run against each of them.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from digitlab.cli import main

pytestmark = pytest.mark.faults

FREE_BYTES = 8192  # what a "full" disk still has: small JSON files fit, checkpoints and PNGs do not


def _mount_tmpfs(folder: Path, options: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs (run the fault tests as root, e.g. in CI's container)")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                            capture_output=True, text=True)
    if result.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip() or result.returncode}")


@contextlib.contextmanager
def _mounted(folder: Path, options: str) -> Iterator[Path]:
    folder.mkdir()
    _mount_tmpfs(folder, options)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=False)


def fill(folder: Path, leave: int = FREE_BYTES, name: str = "filler") -> None:
    """Fill the file system of `folder` until only `leave` bytes are free."""
    stats = os.statvfs(folder)
    size = max(0, stats.f_bavail * stats.f_frsize - leave)
    with open(folder / name, "wb") as f:
        with contextlib.suppress(OSError):
            f.write(b"\0" * size)


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on a 256 KB tmpfs with FREE_BYTES left: the disk fills up during the write."""
    with _mounted(tmp_path / "full", "size=256k") as folder:
        fill(folder)
        yield folder


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody can write to: chmod 555, or for root (who ignores modes) a read-only mount."""
    folder = tmp_path / "read-only"
    if os.geteuid() == 0:
        with _mounted(folder, "ro,size=64k"):
            yield folder
        return
    folder.mkdir()
    folder.chmod(0o555)
    try:
        yield folder
    finally:
        folder.chmod(0o755)


@pytest.fixture
def file_in_the_way(tmp_path: Path) -> Path:
    """A regular file given where a folder should be (`--out FILE/...`)."""
    path = tmp_path / "a-file"
    path.write_text("not a folder\n")
    return path


def leftovers(folder: Path) -> list[str]:
    """Temporary files (ours: `.NAME.XXXX.tmp`) anywhere under `folder`."""
    with contextlib.suppress(OSError):
        return sorted(str(p) for p in folder.rglob(".*.tmp"))
    return []


CAUSES = {  # what the one-line error says, per place
    "full_disk": ("no space left on device",),
    "read_only": ("read-only file system", "permission denied"),
    "file_in_the_way": ("a-file is a file, not a folder",),
}
PLACES = tuple(CAUSES)


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str], place: str) -> str:
    """Run the command; assert exit 1 and exactly one error line giving the cause; return it."""
    code = main(argv)
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.startswith("digitlab: error:")]
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert any(cause in lines[0] for cause in CAUSES[place]), lines[0]
    return lines[0]


def assert_whole(folder: Path) -> None:
    """No temporary file is left, and every file there is whole (JSON parses, PNG decodes)."""
    assert not leftovers(folder)
    for path in folder.rglob("*") if folder.is_dir() else ():
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".png":
            with Image.open(path) as image:
                image.load()


def commands(out: Path, run: Path, data: Path) -> dict[str, tuple[list[str], Path]]:
    """Each writing command, with its output under `out` (and the path its error must name)."""
    checkpoint, common = str(run / "best.pt"), ["--data-dir", str(data)]
    return {
        "train": (["train", "--recipe", "tutorial-mlp", "--epochs", "1", "--train-limit", "500",
                   "--test-limit", "100", "--no-progress", "--out", str(out / "run"), *common], out / "run"),
        "evaluate": (["evaluate", checkpoint, "--test-limit", "100", "--out", str(out / "eval"), *common],
                     out / "eval"),
        "report": (["report", checkpoint, "--test-limit", "200", "--out", str(out / "report"), *common],
                   out / "report"),
        "pack": (["pack", checkpoint, "--out", str(out / "model.pt")], out / "model.pt"),
        "export": (["export", checkpoint, "--format", "onnx", "--check-limit", "100", "--out",
                    str(out / "model.onnx"), *common], out / "model.onnx"),
        "data samples": (["data", "samples", "--out", str(out / "samples"), *common], out / "samples"),
        "plot": (["plot", str(run), "--out", str(out / "curves.png")], out / "curves.png"),
    }


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("command", ["train", "evaluate", "report", "pack", "export", "data samples", "plot"])
def test_an_output_fault_is_one_line_and_leaves_nothing_half_written(
    request, capsys, tiny_run, mnist_root, command, place,
):
    out = request.getfixturevalue(place)
    before = sorted(p.name for p in out.iterdir()) if out.is_dir() else None
    argv, target = commands(out, tiny_run, mnist_root)[command]
    line = one_line_error(capsys, argv, place)
    assert str(target) in line or str(out) in line, line  # names the path it could not write
    assert_whole(out)
    if place != "full_disk" and out.is_dir():
        assert sorted(p.name for p in out.iterdir()) == before  # nothing could be made there


def test_a_torchscript_export_onto_a_full_disk_is_one_line(full_disk, tiny_run, mnist_root):
    """Run apart: torch.jit.save on a full disk aborts the whole process (its writer throws in a
    C++ destructor), so no in-process test can see it."""
    result = subprocess.run(
        [sys.executable, "-m", "digitlab", "export", str(tiny_run / "best.pt"), "--format", "torchscript",
         "--check-limit", "100", "--data-dir", str(mnist_root), "--out", str(full_disk / "model.ts")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("digitlab: error:")]
    assert len(lines) == 1 and str(full_disk / "model.ts") in lines[0] and "no space" in lines[0]
    assert not leftovers(full_disk)


def test_atomic_path_blames_the_output_only_for_the_output(tmp_path):
    """An error reading some input inside the block is not reported as an output fault."""
    from digitlab.errors import OutputError
    from digitlab.files import atomic_path

    elsewhere = str(tmp_path / "inputs" / "data.bin")
    with pytest.raises(PermissionError), atomic_path(tmp_path / "out" / "result.json") as tmp:
        tmp.write_text("partial")
        raise PermissionError(13, "Permission denied", elsewhere)
    with pytest.raises(OutputError, match=r"result\.json: no space left on device"), \
            atomic_path(tmp_path / "out" / "result.json") as tmp:
        raise OSError(28, "No space left on device")  # as a write() reports it: no file name
    assert not (tmp_path / "out").exists()  # the folder made for the file is gone with it


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    """Three drawn digits to classify."""
    from tests.drawing import digit_image

    folder = tmp_path_factory.mktemp("digits")
    for digit in "147":
        digit_image(digit, size=64).save(folder / f"digit-{digit}.png")
    return folder


@pytest.mark.parametrize("place", PLACES)
def test_pictures_that_cannot_be_written_leave_the_results_printed(request, capsys, digits, place):
    out = request.getfixturevalue(place)
    code = main(["classify", str(digits), "--json", "--show", str(out / "show")])
    stdout, err = capsys.readouterr()
    results = json.loads(stdout)  # every result, as JSON, although no picture could be written
    assert [r["digit"] for r in results] == [1, 4, 7] and not any("show" in r for r in results)
    lines = [line for line in err.splitlines() if line.startswith("digitlab: error:")]
    assert code == 1 and len(lines) == 1 and str(out) in lines[0] and "Traceback" not in err, err
    assert any(cause in lines[0] for cause in CAUSES[place])
    assert_whole(out)


@pytest.mark.parametrize("place", PLACES)
def test_a_results_file_that_cannot_be_written_is_one_line(request, capsys, digits, place):
    out = request.getfixturevalue(place)
    if place == "full_disk":
        fill(out, leave=0, name="the-rest")  # a few records would fit in what is left
    argv = ["classify", str(digits), "--jsonl", "--output", str(out / "r.jsonl")]
    line = one_line_error(capsys, argv, place)
    assert str(out) in line
    assert_whole(out)
    assert not (out / "r.jsonl").exists() if out.is_dir() else True


def test_a_full_standard_output_is_one_line(digits):
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "digitlab", "classify", str(digits), "--jsonl"],
                                stdout=full, stderr=subprocess.PIPE, text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr and "Exception" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "digitlab: error: cannot write standard output: no space left on device; "
        "free some space or write elsewhere")


def test_a_folder_that_cannot_be_read_is_one_line_and_the_rest_is_read(capsys, digits, tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() == 0:  # root reads any folder: refuse as the kernel does for anyone else
        scandir = os.scandir

        def refuse(path):
            if os.fspath(path) == str(locked):
                raise PermissionError(13, "Permission denied", str(path))
            return scandir(path)

        monkeypatch.setattr(os, "scandir", refuse)
    else:
        locked.chmod(0)
    try:
        code = main(["classify", str(locked), str(digits / "digit-7.png"), "--jsonl"])
    finally:
        locked.chmod(0o755)
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 1 and records[1]["digit"] == 7 and "Traceback" not in err
    assert err.splitlines()[0] == f"digitlab: error: {locked}: cannot list this folder (Permission denied)"


def test_a_disk_that_fills_up_under_resume_loses_nothing(capsys, full_disk, tmp_path):
    """The disk fills up part-way through a --resume run: one line, exit 1; once there is room,
    the same command finishes the file as an uninterrupted run would have written it."""
    from tests.drawing import DIGITS, digit_image

    images = tmp_path / "many"
    images.mkdir()
    for i in range(30):  # ~700 bytes a record: more than the 8 KB left
        digit_image(DIGITS[i % len(DIGITS)], size=48).save(images / f"{i:02d}.png")
    assert main(["classify", str(images), "--jsonl"]) == 0
    whole = capsys.readouterr().out
    out = full_disk / "results.jsonl"
    line = one_line_error(capsys, ["classify", str(images), "--resume", str(out)], "full_disk")
    assert str(out) in line and 0 < out.stat().st_size < len(whole)
    (full_disk / "filler").unlink()  # room again
    assert main(["classify", str(images), "--resume", str(out)]) == 0
    assert out.read_text() == whole and not leftovers(full_disk)
