r"""`classify`'s results on a text stream — a line per file, a JSON array, JSON lines or CSV —
each record written as its file is read; and, for `--resume`, the files an interrupted run's
JSON lines or CSV already hold, under an exclusive lock on the file.

Paths are written as `printable_path` gives them: a file name that is not UTF-8 (Python holds
its undecodable bytes as lone surrogates) has each such byte written as `\xNN`, in every format,
so that every results file is valid UTF-8 and `--resume` finds the name again. CSV is written by
the csv module; a row with a carriage return in a field is written with every field quoted (the
module quotes only the line terminator's characters, and rows end in "\n").
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from digitlab.batch.stream import FileReading
from digitlab.errors import ConfigError
from digitlab.predicting.results import NumberReading

logger = logging.getLogger(__name__)

FORMATS = ("text", "json", "jsonl", "csv")
RESUMABLE = ("jsonl", "csv")  # formats an interrupted run can be continued in: a record a line
DIGIT_COLUMNS = ("path", "digit", "label", "confidence", "no_digit", "reason", "top_k", "error")
NUMBER_COLUMNS = ("path", "number", "text", "confidence", "no_digit", "error")


class ResultWriter:
    """Writes one record per file to `stream` in `fmt` (FORMATS).

    `text` is for people: "path: reading" (a file that could not be read has no line; its error
    goes to stderr). `json` keeps `classify --json`'s indented array, written element by element;
    `jsonl` and `csv` give every file a record, errors included (`--resume` relies on it).
    """

    def __init__(self, stream: IO[str], fmt: str, *, number: bool = False, show: bool = False,
                 nothing: str = "no digit", header: bool = True) -> None:
        if fmt not in FORMATS:
            raise ConfigError(f"unknown output format {fmt!r}; choose one of {', '.join(FORMATS)}")
        self.stream, self.fmt, self.nothing, self.count = stream, fmt, nothing, 0
        self.columns = (NUMBER_COLUMNS if number else DIGIT_COLUMNS) + (("show",) if show else ())
        self.csv = csv.writer(stream, lineterminator="\n") if fmt == "csv" else None
        self.csv_quoted = csv.writer(stream, lineterminator="\n", quoting=csv.QUOTE_ALL)
        if self.csv is not None and header:
            self.csv.writerow(self.columns)

    def write(self, result: FileReading, show: Path | None = None) -> None:
        """Write `result`'s record (with the path of its picture, if one was made)."""
        record = {**result.to_dict(), "path": printable_path(result.path),
                  **({"show": printable_path(str(show))} if show is not None else {})}
        if self.fmt == "text":
            if result.reading is not None:
                self.stream.write(f"{record['path']}: {result.reading.describe(self.nothing)}\n")
        elif self.fmt == "jsonl":
            self.stream.write(json.dumps(record) + "\n")
        elif self.fmt == "json":
            # json.dumps(list, indent=2), one element at a time: the same text, never all in memory
            self.stream.write(("[\n" if not self.count else ",\n")
                              + textwrap.indent(json.dumps(record, indent=2), "  "))
        else:
            assert self.csv is not None
            row = csv_row(result, self.columns, show)
            carriage = any(isinstance(cell, str) and "\r" in cell for cell in row)
            (self.csv_quoted if carriage else self.csv).writerow(row)
        self.count += 1

    def close(self) -> None:
        """Finish the output (the JSON array's closing bracket) and flush it."""
        if self.fmt == "json":
            self.stream.write("\n]\n" if self.count else "[]\n")
        self.stream.flush()


def csv_row(result: FileReading, columns: tuple[str, ...], show: Path | None = None) -> list[Any]:
    """`result` as a row of `columns`: numbers as in JSON, true/false, empty for none; the
    likeliest classes as "label:probability" separated by ';'."""
    values: dict[str, Any] = {"path": printable_path(result.path), "error": result.error,
                              "show": None if show is None else printable_path(str(show))}
    if result.reading is not None:
        record = result.reading.to_dict()
        values.update(record)
        if not isinstance(result.reading, NumberReading):
            values["top_k"] = ";".join(f"{c['label']}:{c['probability']}" for c in record.get("top_k", []))
    return [_cell(values.get(column)) for column in columns]


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    return ("true" if value else "false") if isinstance(value, bool) else value


def read_done(path: str | os.PathLike[str], fmt: str) -> set[str]:
    """The paths an earlier run already wrote to `path` (JSON lines or CSV), so that they are
    skipped; an unfinished last line (a run killed mid-write) is cut off first. A missing or
    empty file has none. A file that is not such output is a ConfigError."""
    if fmt not in RESUMABLE:
        raise ConfigError(f"--resume needs --jsonl or --csv output (a {fmt} file cannot be continued)")
    file = Path(path)
    if not file.is_file() or file.stat().st_size == 0:
        return set()
    _cut_unfinished_line(file)
    try:
        with open(file, encoding="utf-8", newline="") as f:
            return _csv_paths(f, file) if fmt == "csv" else _jsonl_paths(f, file)
    except UnicodeDecodeError as e:
        raise ConfigError(f"{file}: not UTF-8 text ({e.reason} at byte {e.start}); give --resume a "
                          "file an earlier run wrote, or a new one") from None


def _cut_unfinished_line(file: Path) -> None:
    with open(file, "rb+") as f:
        size = f.seek(0, os.SEEK_END)
        end = size
        while end > 0:  # back to the last newline, a block at a time
            start = max(0, end - 65536)
            f.seek(start)
            block = f.read(end - start)
            if (newline := block.rfind(b"\n")) >= 0:
                end = start + newline + 1
                break
            end = start
        if end < size:
            logger.warning("%s: cutting off an unfinished last line (%d bytes), to be written again",
                           file, size - end)
            f.truncate(end)


def _jsonl_paths(lines: IO[str], file: Path) -> set[str]:
    """The paths of every line, each parsed whole: a line cut short or changed is refused."""
    done = set()
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not isinstance(record.get("path"), str):
                raise ValueError("not a record with a path")
        except json.JSONDecodeError as e:
            raise _unreadable(file, "jsonl", number, f"cut short or changed: "
                              f"{e.msg.removesuffix(' at')}, column {e.colno}") from None
        except ValueError as e:
            raise _unreadable(file, "jsonl", number, str(e)) from None
        done.add(record["path"])
    return done


def _csv_paths(lines: IO[str], file: Path) -> set[str]:
    """The paths of every row, each row read whole (strict quoting, as many fields as the header)."""
    rows, start = csv.reader(lines, strict=True), 1
    try:
        header = next(rows, None)
        if header is None or header[:1] != ["path"]:
            raise ConfigError(f"{file}: not the CSV of `classify --csv` (its first column is not "
                              "'path'); give --resume a file an earlier run wrote, or a new one")
        done, start = set(), rows.line_num + 1  # the line a record starts on, to name it
        for row in rows:
            if len(row) != len(header):
                raise _unreadable(file, "csv", start, f"{len(row)} fields, not {len(header)}")
            done.add(row[0])
            start = rows.line_num + 1
    except csv.Error as e:  # e.g. a quote opened on line `start` and never closed
        raise _unreadable(file, "csv", start, f"{e}, at line {rows.line_num}") from None
    return done


def _unreadable(file: Path, fmt: str, line: int, why: str) -> ConfigError:
    return ConfigError(f"{file}: line {line} is not a record of `classify --{fmt}` ({why}); give "
                       "--resume a file an earlier run wrote (mend or remove that line), or a new one")


def printable_path(path: str) -> str:
    """`path` as results files hold it: undecodable bytes of a name that is not UTF-8 (held by
    Python as lone surrogates, `surrogateescape`) written as `\\xNN` (`backslashreplace`)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return path


@contextlib.contextmanager
def locked_results(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on results file `path` (created if missing) while a run reads
    what it holds and appends to it; a second run on the same file is refused in one line."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no advisory locks; one writer is the user's care
        yield
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise ConfigError(f"--resume {path}: {e.strerror or e}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"--resume {path}: another classify is writing this file; wait for it "
                              "to finish, or give another file") from None
        yield
    finally:
        os.close(fd)  # releases the lock
