from PIL import Image

from digitlab.predicting.predictor import Predictor
from digitlab.predicting.results import DigitReading


def test_predictor_reads_mnist_digits(tiny_run, mnist_root):
    from digitlab.data import load_split

    predictor = Predictor.from_checkpoint(tiny_run / "best.pt")
    images, labels = load_split(mnist_root, train=False, limit=500)
    probabilities = predictor.predict(images.float() / 255)
    assert probabilities.shape == (500, 10)
    assert (probabilities.argmax(1) == labels).float().mean() > 0.85


def test_low_confidence_is_no_digit(tiny_run, mnist_root):
    from digitlab.data import load_split

    predictor = Predictor.from_checkpoint(tiny_run / "best.pt")
    images, _ = load_split(mnist_root, train=False, limit=1)
    picture = Image.fromarray(images[0].numpy())
    sure = predictor.read_digits([picture], min_confidence=0.0)[0]
    assert isinstance(sure, DigitReading) and sure.digit is not None and 0 < sure.confidence <= 1
    never = predictor.read(picture, min_confidence=1.0, top_k=3)
    assert never.digit is None and never.no_digit and "below" in never.reason
    described = never.to_dict()
    assert described["no_digit"] and len(described["top_k"]) == 3  # probabilities still reported
