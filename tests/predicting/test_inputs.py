"""What a PyTorch user holds goes in: paths, bytes, PIL images, arrays and tensors of every
usual shape; what does not is a TypeError naming what does; readings and models print short."""

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import digitlab
from digitlab.errors import UnsupportedImage
from digitlab.predicting.predictor import Predictor
from tests.conftest import make_fake_images

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model():
    return Predictor.load()


@pytest.fixture(scope="module")
def digits(mnist_root):
    """Eight MNIST test digits (uint8, N×28×28) and their labels; the shipped model reads all."""
    from digitlab.data import load_split

    images, labels = load_split(mnist_root, train=False, limit=8)
    return images, labels.tolist()


def one_image_forms(image: torch.Tensor, tmp_path: Path) -> dict:
    """The same uint8 28×28 digit as every input `read` takes."""
    picture = Image.fromarray(image.numpy())
    picture.save(tmp_path / "digit.png")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    floats = image.float() / 255
    return {
        "path": tmp_path / "digit.png", "str": str(tmp_path / "digit.png"),
        "bytes": buffer.getvalue(), "stream": io.BytesIO(buffer.getvalue()), "pil": picture,
        "numpy uint8 H×W": image.numpy(), "numpy float H×W": floats.numpy(),
        "numpy 1×H×W": image.numpy()[None], "numpy H×W×3": np.repeat(image.numpy()[..., None], 3, 2),
        "tensor uint8 H×W": image, "tensor float H×W": floats, "tensor uint8 1×H×W": image[None],
        "tensor float 1×H×W": floats[None], "tensor float64 H×W": floats.double(),
        "tensor needing grad": floats.clone().requires_grad_(),
    }


def test_read_takes_every_single_image_form(model, digits, tmp_path):
    images, labels = digits
    for name, form in one_image_forms(images[0], tmp_path).items():
        reading = model.read(form)
        assert reading.digit == labels[0], name
        assert digitlab.read(form, model).digit == labels[0], name


@pytest.mark.parametrize("form", ["tensor N×H×W", "tensor N×1×H×W", "float N×1×H×W", "numpy N×H×W",
                                  "numpy N×1×H×W", "list of tensors", "list of mixed"])
def test_read_digits_takes_batches(model, digits, tmp_path, form):
    images, labels = digits
    batch = {
        "tensor N×H×W": images, "tensor N×1×H×W": images[:, None],
        "float N×1×H×W": images[:, None].float() / 255, "numpy N×H×W": images.numpy(),
        "numpy N×1×H×W": images.numpy()[:, None], "list of tensors": list(images),
        "list of mixed": [images[0], Image.fromarray(images[1].numpy()), images[2].numpy(),
                          *images[3:]],
    }[form]
    assert [r.digit for r in model.read_digits(batch)] == labels
    assert [r.digit for r in digitlab.read_digits(batch, model)] == labels


@pytest.mark.parametrize("shape", ["N×28×28", "N×1×28×28", "28×28"])
@pytest.mark.parametrize("kind", ["tensor float", "tensor uint8", "numpy float", "numpy uint8"])
def test_predict_takes_tensors_and_arrays_of_both_shapes(model, digits, shape, kind):
    images, labels = digits
    pixels = images if "uint8" in kind else images.float() / 255
    pixels = {"N×28×28": pixels, "N×1×28×28": pixels[:, None], "28×28": pixels[0]}[shape]
    if "numpy" in kind:
        pixels = pixels.numpy()
    probabilities = model.predict(pixels)
    expected = labels if shape != "28×28" else labels[:1]
    assert probabilities.shape == (len(expected), 10) and probabilities.argmax(1).tolist() == expected


def test_predict_gives_the_same_numbers_for_every_form(model, digits):
    images, _ = digits
    want = model.predict(images.float() / 255)
    for form in (images, images[:, None], images.numpy(), (images.float() / 255)[:, None].numpy()):
        assert torch.allclose(model.predict(form), want, atol=1e-6)


@pytest.mark.parametrize("bad", [3, None, 2.5, [1, 2], {"image": 1}])
def test_read_refuses_other_types_naming_what_it_takes(model, bad):
    accepted = "a path, bytes, a binary file, a PIL image, or a numpy array or torch tensor"
    with pytest.raises(TypeError, match=accepted):
        model.read(bad)


def test_wrong_types_and_shapes_elsewhere_say_what_is_accepted(model):
    with pytest.raises(TypeError, match="predict\\(\\) takes a torch tensor or numpy array"):
        model.predict([[0.0] * 28] * 28)
    with pytest.raises(TypeError, match="uint8 .* or float"):
        model.predict(torch.zeros(2, 28, 28, dtype=torch.int64))
    with pytest.raises(ValueError, match="N×28×28 or N×1×28×28 pixels, not 2×3×28×28"):
        model.predict(torch.zeros(2, 3, 28, 28))
    with pytest.raises(ValueError, match="normalised"):
        model.predict((torch.rand(2, 28, 28) - 0.1307) / 0.3081 - 1)
    with pytest.raises(TypeError, match="not one str; use read\\(\\) for one image"):
        model.read_digits("digit.png")
    with pytest.raises(TypeError, match="sequence of images"):
        model.read_digits(7)
    with pytest.raises(UnsupportedImage, match="read_digits\\(\\) reads a batch"):
        model.read(torch.zeros(5, 28, 28))
    with pytest.raises(UnsupportedImage, match="values in \\[0, 1\\]"):
        model.read(torch.full((28, 28), 2.0))


def test_fake_digits_of_other_sizes_go_through_read_digits(model):
    images, _ = make_fake_images(3)
    big = torch.from_numpy(np.kron(images, np.ones((1, 3, 3), dtype=np.uint8)))  # 3×84×84
    assert len(model.read_digits(big)) == 3 and len(model.read_digits(big[:, None])) == 3


def test_short_reprs(model, digits):
    images, _ = digits
    reading = model.read(images[0])
    assert repr(reading) == f"DigitReading(digit=7, confidence={reading.confidence:.3f})"
    empty = model.read(torch.zeros(28, 28))
    assert repr(empty).startswith("DigitReading(digit=None, confidence=0.000, reason=")
    row = torch.cat([images[1], images[0], images[2]], dim=1)  # "271"
    number = model.read_number(row)
    assert repr(number) == f"NumberReading(number='271', confidence={number.confidence:.3f}, digits=3)"
    first = repr(number.digits[0])
    assert first.startswith("DigitReading(digit=2, confidence=") and "box=(" in first
    assert repr(model) == "Predictor(model='bncnn', dataset='mnist', T=0.39)"
    assert len(repr(reading)) < 60 and len(repr(number)) < 80


def test_torch_hub_loads_the_shipped_reader_from_the_checkout(digits):
    images, labels = digits
    reader = torch.hub.load(str(REPO), "digitlab", source="local")
    assert repr(reader) == "Predictor(model='bncnn', dataset='mnist', T=0.39)"
    assert reader.read(images[0]).digit == labels[0]
