from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitlab.errors import ConfigError
from digitlab.reading.labelled import LabelledImage, load_labelled


def _write(folder: Path, name: str) -> None:
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(folder / name)


def test_labelled_pictures_are_named_by_their_digit(tmp_path):
    for name in ("7_a.png", "3_b.JPG", "x_c.png", "12.png", "4_d.txt"):
        (tmp_path / name).write_bytes(b"") if name.endswith(".txt") else _write(tmp_path, name)
    (tmp_path / "labels.csv").write_text("file,source,kind\n7_a.png,me,photo\n")
    found = load_labelled(tmp_path)
    assert found == [LabelledImage(tmp_path / "3_b.JPG", "3", "?", "?"),
                     LabelledImage(tmp_path / "7_a.png", "7", "me", "photo")]


def test_a_missing_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not a folder of labelled digits"):
        load_labelled(tmp_path / "nowhere")
