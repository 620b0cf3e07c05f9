"""Fault injection on models: a bit-flipped, NaN or badly described checkpoint is refused in one
line by every command that reads one, and nothing is written on the way."""

import math
import shutil

import pytest
import torch
from PIL import Image

import digitlab
from digitlab.checkpoints.format import DEFAULT_MODEL
from digitlab.checkpoints.integrity import weights_digest
from digitlab.cli import main
from digitlab.errors import CheckpointError

pytestmark = pytest.mark.faults


def one_line_error(capsys, *argv):
    """Run the CLI; return its one error line (asserting exit 1, no traceback, nothing else)."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("digitlab: error: ")]
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def flip_bits_inside_a_tensor(path, name="classifier.weight"):
    """Flip one exponent bit of a float in the middle of tensor `name`'s bytes in the file."""
    tensor = torch.load(path, weights_only=True)["state_dict"][name]
    raw = tensor.contiguous().numpy().tobytes()
    data = bytearray(path.read_bytes())
    start = data.find(raw)
    assert start > 0 and data.find(raw, start + 1) == -1  # the tensor's bytes, once
    data[start + 4 * (tensor.numel() // 2) + 3] ^= 0x20
    path.write_bytes(bytes(data))


def damaged(tmp_path, change):
    """A copy of the shipped model with `change` applied to its payload (the digest kept true to
    the weights, so the check that must catch it is the one under test)."""
    payload = torch.load(DEFAULT_MODEL, weights_only=True)
    change(payload)
    payload["weights_sha256"] = weights_digest(payload["state_dict"])
    path = tmp_path / "damaged.pt"
    torch.save(payload, path)
    return path


def nan_weights(payload):
    payload["state_dict"]["classifier.weight"][3, 5] = math.nan


CASES = {
    "bit flip": (lambda tmp: flip(tmp), "is damaged: its weights do not match the sha256 digest"),
    "NaN weights": (lambda tmp: damaged(tmp, nan_weights),
                    "holds weights that are not finite (NaN or inf in 'classifier.weight')"),
    "classes=['a']": (lambda tmp: damaged(tmp, lambda p: p.update(classes=["a"])),
                      "classes must be 10 distinct names"),
    "mean='x'": (lambda tmp: damaged(tmp, lambda p: p.update(mean="x")),
                 "mean 'x' is not a finite number"),
    "std=0": (lambda tmp: damaged(tmp, lambda p: p.update(std=0)),
              "std 0 is not a finite positive number"),
}


def flip(tmp_path):
    path = tmp_path / "flipped.pt"
    shutil.copy(DEFAULT_MODEL, path)
    flip_bits_inside_a_tensor(path)
    return path


@pytest.fixture
def digit_png(tmp_path):
    image = Image.new("L", (60, 80), 255)
    for y in range(15, 65):  # a dark stroke on paper: a "1"
        for x in range(27, 33):
            image.putpixel((x, y), 20)
    path = tmp_path / "digit.png"
    image.save(path)
    return path


def test_the_undamaged_copy_reads_a_digit(tmp_path, digit_png, capsys):
    path = tmp_path / "copy.pt"
    shutil.copy(DEFAULT_MODEL, path)
    assert main(["classify", str(digit_png), "--model", str(path)]) == 0
    assert "1" in capsys.readouterr().out


@pytest.mark.parametrize("case", CASES)
def test_classify_refuses(case, tmp_path, digit_png, capsys):
    make, message = CASES[case]
    path = make(tmp_path)
    line = one_line_error(capsys, "classify", digit_png, "--model", path, "--json")
    assert message in line and str(path) in line


@pytest.mark.parametrize("case", CASES)
def test_evaluate_refuses_and_writes_nothing(case, tmp_path, capsys):
    make, message = CASES[case]
    path = make(tmp_path)
    out = tmp_path / "evaluation"
    line = one_line_error(capsys, "evaluate", path, "--out", out, "--data-dir", tmp_path / "data")
    assert message in line and not out.exists()


@pytest.mark.parametrize("case", CASES)
def test_export_refuses_and_writes_nothing(case, tmp_path, capsys):
    make, message = CASES[case]
    path = make(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    line = one_line_error(capsys, "export", path, "--format", "torchscript", "--out",
                          tmp_path / "model.ts", "--data-dir", tmp_path / "data")
    assert message in line and sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("case", CASES)
def test_the_python_api_refuses(case, tmp_path):
    make, message = CASES[case]
    with pytest.raises(CheckpointError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        digitlab.load(make(tmp_path))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("case", CASES)
def test_serve_refuses_to_start(case, tmp_path, capsys, monkeypatch):
    pytest.importorskip("uvicorn", reason="needs digitlab[serve]")
    import uvicorn

    def started(*args, **kwargs):
        raise AssertionError("the server started with a damaged model")

    monkeypatch.setattr(uvicorn, "run", started)
    make, message = CASES[case]
    line = one_line_error(capsys, "serve", "--model", make(tmp_path), "--port", "8765")
    assert message in line


def huge_weights(payload):
    """Finite weights that overflow: every weight ±3e38 (what no digest or finite check sees)."""
    for tensor in payload["state_dict"].values():
        if tensor.is_floating_point():
            tensor.copy_(torch.where(tensor >= 0, 3e38, -3e38))


NOT_FINITE = "computes numbers that are not finite (NaN or inf) although its weights are finite"


@pytest.mark.parametrize("command", ["classify", "evaluate", "report"])
def test_finite_weights_that_compute_nan_are_refused_in_one_line(command, tmp_path, digit_png, mnist_root,
                                                                 capsys):
    path = damaged(tmp_path, huge_weights)
    out = tmp_path / "out"
    argv = {"classify": ["classify", digit_png, "--model", path, "--json"],
            "evaluate": ["evaluate", path, "--out", out, "--test-limit", "200", "--data-dir", mnist_root],
            "report": ["report", path, "--out", out, "--test-limit", "200", "--data-dir", mnist_root]}
    assert main([str(a) for a in argv[command]]) == 1
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("digitlab: error: ")]
    assert len(lines) == 1 and NOT_FINITE in lines[0] and str(path) in lines[0], captured.err
    assert "Traceback" not in captured.err and "NaN" not in captured.out and not out.exists()
