"""classify's output formats, written a record at a time, and what --resume reads back."""

import csv
import io
import json

import pytest
import torch

from digitlab.batch.outputs import ResultWriter, read_done
from digitlab.batch.stream import FileReading
from digitlab.errors import ConfigError
from digitlab.predicting.results import DigitReading, NumberReading

CLASSES = [str(d) for d in range(10)]


def reading(digit: int, confidence: float) -> DigitReading:
    """`digit` at `confidence`, the next digit second at 0.05, the rest alike."""
    probabilities = torch.full((10,), (0.95 - confidence) / 8)
    probabilities[digit], probabilities[(digit + 1) % 10] = confidence, 0.05
    return DigitReading.of(probabilities, CLASSES, torch.zeros(28, 28), top_k=2)


RESULTS = [
    FileReading("a.png", reading(7, 0.9)),
    FileReading("b, \"quoted\".png", error="b.png: not an image (unrecognised format)"),
    FileReading("c.png", DigitReading.of(None, CLASSES, torch.zeros(28, 28), reason="no ink")),
]


def written(fmt: str, results=RESULTS, **options) -> str:
    stream = io.StringIO()
    writer = ResultWriter(stream, fmt, **options)
    for result in results:
        writer.write(result)
    writer.close()
    return stream.getvalue()


@pytest.mark.parametrize("count", [0, 1, 3])
def test_the_json_array_is_written_element_by_element_as_one_dump(count):
    expected = json.dumps([r.to_dict() for r in RESULTS[:count]], indent=2) + "\n"
    assert written("json", RESULTS[:count]) == expected


def test_json_lines_and_csv_give_every_file_a_record_in_order():
    lines = written("jsonl").splitlines()
    assert [json.loads(line) for line in lines] == [r.to_dict() for r in RESULTS]
    rows = list(csv.DictReader(io.StringIO(written("csv"))))
    assert [row["path"] for row in rows] == [r.path for r in RESULTS]
    assert rows[0] | {"confidence": float(rows[0]["confidence"])} == {
        "path": "a.png", "digit": "7", "label": "7", "confidence": 0.9, "no_digit": "false",
        "reason": "", "top_k": "7:0.9;8:0.05", "error": ""}
    assert rows[1]["error"].startswith("b.png: not an image") and rows[1]["digit"] == ""
    assert rows[2]["no_digit"] == "true" and rows[2]["reason"] == "no ink"


def test_text_has_a_line_per_reading_and_leaves_errors_to_stderr():
    assert written("text") == "a.png: 7 90.0%, 8 5.0%\nc.png: no digit (no ink)\n"


def test_csv_of_numbers_has_the_number_columns():
    number = NumberReading.of([reading(2, 0.99), reading(4, 0.98)], (120, 60))
    rows = list(csv.reader(io.StringIO(written("csv", [FileReading("n.png", number)], number=True))))
    assert rows[0] == ["path", "number", "text", "confidence", "no_digit", "error"]
    assert rows[1][:3] == ["n.png", "24", "24"] and rows[1][4] == "false"


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_resume_reads_the_paths_done_and_cuts_an_unfinished_line(tmp_path, fmt):
    path = tmp_path / f"out.{fmt}"
    text = written(fmt)
    path.write_text(text + text.splitlines()[1][:9])  # killed while writing the next record
    assert read_done(path, fmt) == {r.path for r in RESULTS}
    assert path.read_text() == text  # the unfinished line is gone, the rest as it was
    assert read_done(tmp_path / "new.jsonl", fmt) == set()  # a file to start


def test_resume_refuses_a_file_it_did_not_write(tmp_path):
    (tmp_path / "notes.jsonl").write_text('{"path": "a.png"}\nsomething else\n')
    with pytest.raises(ConfigError, match="line 2 is not a record of `classify --jsonl`"):
        read_done(tmp_path / "notes.jsonl", "jsonl")
    (tmp_path / "notes.csv").write_text("name,digit\na.png,1\n")
    with pytest.raises(ConfigError, match="not the CSV of `classify --csv`"):
        read_done(tmp_path / "notes.csv", "csv")
    with pytest.raises(ConfigError, match="--resume needs --jsonl or --csv"):
        read_done(tmp_path / "notes.csv", "json")
