"""The public Python API: the README's example runs as written, every kind of image is read,
`import digitlab` stays cheap, and reading needs no web server."""

from __future__ import annotations

import ast
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import digitlab
from digitlab.errors import ImageNotFound, UnsupportedImage
from digitlab.predicting.results import DigitReading, NumberReading
from tests.drawing import digit_image, draw_digit

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
WEB = ("fastapi", "starlette", "pydantic", "uvicorn")


def readme_example() -> str:
    """The first ```python block of the README's "Python API" section."""
    section = re.search(r"^## Python API$(.*?)^## ", (ROOT / "README.md").read_text(), re.M | re.S)
    assert section, "README.md has no '## Python API' section"
    block = re.search(r"^```python\n(.*?)^```$", section.group(1), re.M | re.S)
    assert block, "the Python API section has no ```python block"
    return block.group(1)


def number_image(digits: str = "274") -> Image.Image:
    image = Image.new("L", (170 * len(digits) + 40, 280), 255)
    for i, digit in enumerate(digits):
        draw_digit(image, digit, (40 + 170 * i, 50, 150 + 170 * i, 230), stroke=14)
    return image


@pytest.fixture(scope="module")
def model():
    return digitlab.load()


@pytest.fixture
def seven() -> Image.Image:
    return digit_image("7", size=280)


def test_the_readme_example_runs_as_written(tmp_path, monkeypatch, capsys, mnist_root):
    from digitlab.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["data", "samples", "--out", "samples", "--data-dir", str(mnist_root)]) == 0
    capsys.readouterr()
    exec(compile(readme_example(), "README.md (Python API)", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Predictor(model='bncnn', dataset='mnist', T=0.39)"
    assert lines[1].startswith("DigitReading(digit=3, confidence=") and " 3 Candidate(digit=3" in lines[1]
    assert lines[2] == "[7, 2, 1, 0, 4, 1, 4, 9] [7, 2, 1, 0, 4, 1, 4, 9]"
    assert lines[3] == "tensor([7, 2, 1, 0, 4, 1, 4, 9])"
    assert lines[4].startswith("NumberReading(number='271', confidence=") and lines[4].endswith("digits=3)")
    assert lines[5] == "7" and (tmp_path / "why-3.png").is_file()


def test_readings_are_typed(model, seven):
    reading = model.read(seven, top_k=3)
    assert isinstance(reading, DigitReading) and reading.digit == 7 and not reading.no_digit
    assert reading.pixels.shape == (28, 28) and len(reading.probabilities) == 10
    assert [c.label for c in reading.top_k][0] == "7" and len(reading.top_k) == 3
    assert str(reading).startswith("7 ")
    number = model.read_number(number_image("274"))
    assert isinstance(number, NumberReading) and number.number == "274" == number.text
    assert [d.box is not None for d in number.digits] == [True] * 3
    blank = model.read(Image.new("L", (100, 100), 255))
    assert blank.no_digit and blank.digit is None and blank.reason and str(blank).startswith("no digit")


def _as_array(image: Image.Image, mode: str, floats: bool) -> np.ndarray:
    array = np.asarray(image.convert(mode))
    return array / 255.0 if floats else array


INPUTS = {
    "str path": lambda image, path: str(path),
    "Path": lambda image, path: path,
    "bytes": lambda image, path: path.read_bytes(),
    "stream": lambda image, path: io.BytesIO(path.read_bytes()),
    "PIL": lambda image, path: image,
    "uint8 grey": lambda image, path: _as_array(image, "L", False),
    "uint8 RGB": lambda image, path: _as_array(image, "RGB", False),
    "uint8 RGBA": lambda image, path: _as_array(image, "RGBA", False),
    "float grey": lambda image, path: _as_array(image, "L", True),
    "float32 RGB": lambda image, path: _as_array(image, "RGB", True).astype(np.float32),
}


@pytest.mark.parametrize("kind", INPUTS)
def test_every_kind_of_image_is_read_alike(model, seven, tmp_path, kind):
    path = tmp_path / "seven.png"
    seven.save(path)
    reading = model.read(INPUTS[kind](seven, path))
    assert reading.digit == 7
    assert reading.confidence == pytest.approx(model.read(seven).confidence, abs=1e-3)


@pytest.mark.parametrize("array", [
    np.zeros((28, 28, 2), np.uint8),  # two channels
    np.zeros((4, 28, 28, 1), np.uint8),  # a batch
    np.zeros((0, 28), np.uint8),  # empty
    np.zeros((28, 28), np.int64),  # not uint8 nor float
    np.full((28, 28), 2.0),  # floats beyond [0, 1]
    np.full((28, 28), np.nan),
])
def test_arrays_that_are_not_images_are_refused(model, array):
    with pytest.raises(UnsupportedImage):
        model.read(array)


def test_files_and_bytes_that_are_not_images_are_refused(model, tmp_path):
    with pytest.raises(ImageNotFound):
        digitlab.read(tmp_path / "missing.png")
    with pytest.raises(UnsupportedImage):
        model.read(b"not an image")


def test_read_takes_a_model_or_its_path(tmp_path, seven):
    import torch

    from digitlab.checkpoints.format import Checkpoint, save_checkpoint
    from digitlab.models import create_model

    torch.manual_seed(0)
    mlp = create_model("mlp")
    save_checkpoint(tmp_path / "mlp.pt", Checkpoint(model_name="mlp", model_args={},
                                                    state_dict=mlp.state_dict()))
    from_path = digitlab.read(seven, model=tmp_path / "mlp.pt")
    loaded = digitlab.load(str(tmp_path / "mlp.pt"))
    assert from_path.probabilities == loaded.read(seven).probabilities
    assert digitlab.read(seven).digit == 7  # the shipped model


def test_an_onnx_file_loads_with_onnxruntime(tmp_path, seven):
    pytest.importorskip("onnxruntime")
    import torch

    from digitlab.checkpoints.format import Checkpoint
    from digitlab.export.exporter import export_model
    from digitlab.models import create_model
    from digitlab.predicting.backends import OnnxBackend

    mlp = create_model("mlp").eval()
    checkpoint = Checkpoint(model_name="mlp", model_args={}, state_dict=mlp.state_dict())
    export_model(mlp, checkpoint, tmp_path / "m.onnx", "onnx", torch.rand(8, 28, 28))
    onnx = digitlab.load(tmp_path / "m.onnx")
    assert isinstance(onnx.backend, OnnxBackend)
    assert isinstance(onnx.read(seven), DigitReading) and onnx.predict(torch.rand(3, 28, 28)).shape == (3, 10)


def _python(code: str) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join([str(SRC), str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=300)


def test_import_digitlab_does_not_import_torch():
    done = _python("import sys, digitlab; print(digitlab.__version__, 'torch' in sys.modules)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "False"


def test_reading_works_without_the_web_server_packages(tmp_path):
    digit_image("7", size=280).save(tmp_path / "seven.png")
    blocked = "; ".join(f"sys.modules[{name!r}] = None" for name in WEB)  # `import fastapi` fails
    done = _python(f"import sys; {blocked}; import digitlab; "
                   f"print(digitlab.load().read({str(tmp_path / 'seven.png')!r}).digit)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "7"
    served = _python(f"import sys; {blocked}; import digitlab.service")  # the block is real
    assert served.returncode != 0 and "ModuleNotFoundError" in served.stderr


def test_only_the_service_imports_the_web_server_packages():
    allowed = (SRC / "digitlab" / "service", SRC / "digitlab" / "cli" / "serving.py")
    offenders = []
    for path in sorted((SRC / "digitlab").rglob("*.py")):
        if path == allowed[1] or allowed[0] in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            offenders += [f"{path.relative_to(SRC)}: {n}" for n in names if n.split(".")[0] in WEB]
    assert not offenders


def test_load_uses_one_torch_thread_unless_told():
    code = ("import torch, digitlab; torch.set_num_threads(2); digitlab.load(); a = torch.get_num_threads(); "
            "digitlab.load(threads=None); b = torch.get_num_threads(); digitlab.load(threads=2); "
            "print(a, b, torch.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(SRC)}).stdout.split()
    assert out == ["1", "1", "2"]
