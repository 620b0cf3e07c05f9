"""Classifying as a stream: worker processes give the same readings as one batch in one
process, in input order, with a bounded number of files in flight."""

import os
import time

import pytest

from digitlab.batch import tasks
from digitlab.batch.classify import classify_files
from digitlab.batch.stream import StreamOptions, classify_stream, worker_pool
from digitlab.batch.workers import OrderedPool, chunked
from digitlab.predicting.predictor import Predictor
from tests.drawing import DIGITS, digit_image


@pytest.fixture(scope="module")
def predictor():
    return Predictor.from_checkpoint()  # the packaged model


@pytest.fixture
def drawn(tmp_path):
    """Forty drawn digits of several sizes, a blank canvas and a file that is no image."""
    paths = []
    for i in range(40):
        path = tmp_path / f"{i:02d}.png"
        digit_image(DIGITS[i % len(DIGITS)], size=48 + 8 * (i % 5)).save(path)
        paths.append(str(path))
    digit_image("1", size=60).point(lambda _: 255).save(tmp_path / "blank.png")
    (tmp_path / "text.png").write_text("not an image")
    return [*paths[:20], str(tmp_path / "text.png"), str(tmp_path / "blank.png"), *paths[20:]]


def test_workers_read_what_one_process_reads_in_one_batch(predictor, drawn):
    """Same readings, same numbers to the last bit, whatever the batches were."""
    good = [p for p in drawn if not p.endswith("text.png")]
    expected = {p: r.to_dict() for p, r in zip(good, predictor.read_digits(good, top_k=3), strict=True)}
    for jobs in (1, 2):
        results = classify_files(predictor, drawn, top_k=3, jobs=jobs)
        assert [r.path for r in results] == drawn
        assert "not an image" in (results[20].error or "") and results[20].reading is None
        assert {r.path: r.reading.to_dict() for r in results if r.reading} == expected
    assert sum(expected[p]["digit"] == int(DIGITS[i % len(DIGITS)]) for i, p in enumerate(drawn[:20])) >= 17


def test_a_single_image_reads_as_it_does_in_a_batch(predictor, drawn):
    batch = predictor.read_digits(drawn[:8])
    assert [predictor.read(path).probabilities for path in drawn[:8]] == [r.probabilities for r in batch]


def test_numbers_and_pictures_come_back_from_the_workers(predictor, tmp_path):
    from PIL import Image

    canvas = Image.new("L", (300, 120), 255)
    for k, digit in enumerate("2024"):
        canvas.paste(digit_image(digit, size=100), (k * 70 - 10, 10), mask=None)
    canvas.save(tmp_path / "year.png")
    options = StreamOptions(number=True, keep_images=True)
    with worker_pool(2) as pool:
        (result,) = classify_stream(predictor, [str(tmp_path / "year.png")], options, pool)
    assert result.image is not None and result.image.size == (300, 120)
    assert len(result.reading.digits) == 4


def slow_echo(chunk, delay):
    time.sleep(delay * (10 - chunk[0]) / 10)  # later chunks finish first
    return list(chunk)


def test_the_pool_keeps_input_order_and_a_bounded_window():
    pulled = []

    def chunks():
        for i in range(10):
            pulled.append(i)
            yield [i]

    with OrderedPool(2) as pool:
        results = pool.map(slow_echo, chunks(), 0.05, ahead=2)
        assert next(results) == [0] and len(pulled) <= 2 * 2 + 1  # never the whole input
        assert [r for chunk in results for r in chunk] == list(range(1, 10))


def test_the_pool_says_when_nothing_came_for_a_while():
    with OrderedPool(1) as pool:
        results = list(pool.map(slow_echo, [[0]], 1.0, wait=0.1))
    assert results[-1] == [0] and results.count([]) >= 3


def test_chunks_are_taken_lazily():
    taken = []
    chunks = chunked((taken.append(i) or i for i in range(10)), 4)
    assert next(chunks) == [0, 1, 2, 3] and len(taken) == 4
    assert list(chunks) == [[4, 5, 6, 7], [8, 9]]


def test_an_unexpected_failure_on_one_file_is_that_files_error(predictor, drawn, monkeypatch):
    real = tasks.preprocess

    def fragile(image, pipeline):
        if image.size == (64, 64):  # the third drawing
            raise ValueError("odd image")
        return real(image, pipeline)

    monkeypatch.setattr(tasks, "preprocess", fragile)
    results = list(classify_stream(predictor, drawn[:5]))
    assert [r.reading is None for r in results] == [False, False, True, False, False]
    assert "ValueError: odd image" in results[2].error and "bug" in results[2].error


def die(chunk):
    os._exit(9)  # as the kernel's OOM killer would end it


def test_a_worker_that_dies_is_one_clear_error():
    from digitlab.errors import DigitlabError

    with OrderedPool(2) as pool, pytest.raises(DigitlabError, match="worker process stopped unexpectedly"):
        list(pool.map(die, [[1], [2]]))


def test_robust_views_travel_from_the_workers_and_the_model_votes(predictor, tmp_path):
    from tests.drawing import soft_scan

    path = tmp_path / "0_soft.png"
    soft_scan("0", 10, 40, 1.5).save(path)
    direct = predictor.read_digits([str(path)])[0]
    with worker_pool(1) as pool:
        streamed = next(classify_stream(predictor, [str(path)], StreamOptions(), pool)).reading
    assert direct.preprocess is not None and "chosen" in direct.preprocess["views"]
    assert streamed is not None and streamed.preprocess == direct.preprocess
    assert streamed.digit == direct.digit and streamed.confidence == direct.confidence
