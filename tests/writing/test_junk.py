"""Pictures with no digit (writing.junk) and their training form (writing.synthetic.junk_digits),
rendered once and kept in a cache."""

import concurrent.futures

import numpy as np
import pytest
import torch

from digitlab.data import NOT_A_DIGIT
from digitlab.writing import synthetic
from digitlab.writing.junk import KINDS, junk_picture


def test_every_kind_renders_a_grey_picture_the_same_for_the_same_seed():
    for kind in KINDS:
        picture, made = junk_picture(np.random.default_rng(4), kind)
        again, _ = junk_picture(np.random.default_rng(4), kind)
        assert made == kind and picture.mode == "L" and min(picture.size) >= 24
        assert np.array_equal(np.asarray(picture), np.asarray(again))


def test_junk_for_training_is_labelled_not_a_digit_and_looks_like_what_the_model_sees():
    images, labels = synthetic.junk_digits(60, seed=2)
    assert 30 <= len(images) <= 60  # the pictures preprocessing finds no ink in are left out
    assert images.dtype == torch.uint8 and images.shape[1:] == (28, 28)
    assert (labels == NOT_A_DIGIT).all()
    assert (images.flatten(1).amax(1) > 128).all()  # each holds what preprocessing took for ink


def test_rendered_chunks_are_kept_and_read_back_instead_of_rendered_again(tmp_path, monkeypatch):
    made = synthetic.junk_digits(40, seed=3, cache=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 1

    def no_pool(*args, **kwargs):
        raise AssertionError("rendered again")

    monkeypatch.setattr(synthetic, "ProcessPoolExecutor", no_pool)
    again = synthetic.junk_digits(40, seed=3, cache=tmp_path)
    assert torch.equal(made[0], again[0]) and torch.equal(made[1], again[1])
    with pytest.raises(AssertionError, match="rendered again"):  # another seed is another chunk
        synthetic.junk_digits(40, seed=4, cache=tmp_path)


def test_a_damaged_chunk_is_rendered_again(tmp_path, caplog):
    made = synthetic.junk_digits(20, seed=5, cache=tmp_path)
    (chunk,) = tmp_path.glob("*.npz")
    chunk.write_bytes(b"not a zip file")
    again = synthetic.junk_digits(20, seed=5, cache=tmp_path)
    assert torch.equal(made[0], again[0]) and "is damaged: rendering its pictures again" in caplog.text
    assert np.load(chunk)["pixels"].shape[0] == len(made[0])  # and kept whole again


def test_the_pool_is_a_real_process_pool():  # the no_pool test above replaces this name
    assert synthetic.ProcessPoolExecutor is concurrent.futures.ProcessPoolExecutor


def test_a_cache_folder_that_cannot_be_written_is_warned_about_once(tmp_path, caplog):
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")
    made = synthetic.junk_digits(1100, seed=6, cache=blocked / "synthetic")  # three chunks
    assert len(made[0]) > 0
    assert caplog.text.count("cannot keep rendered pictures") == 1
