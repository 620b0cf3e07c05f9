"""`digitlab classify`: read the digit (or number) in image files with a trained model."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from digitlab.cli.args import MODEL_HELP, Command, positive_int, probability, shows_progress
from digitlab.errors import ConfigError, DigitlabError

if TYPE_CHECKING:  # the parser is built without torch: reading modules are imported when run
    from digitlab.batch.inputs import Input
    from digitlab.batch.outputs import ResultWriter
    from digitlab.batch.stream import FileReading
    from digitlab.predicting.predictor import Predictor

IN_PROCESS_BELOW = 64  # fewer files than this are read in this process: workers take ~1 s to start


def register(command: Command) -> None:
    p = command("classify", cmd_classify, "read the digit in each image (or the class, for a model "
                "of another data set)", """
digitlab classify my-digit.png                         # the model shipped with digitlab
digitlab classify photos/ --json --top-k 3
digitlab classify --number photo-of-2024.jpg --show    # several digits in a row, with pictures
digitlab classify digits/ --model runs/fast/best.pt --preprocess naive
digitlab classify -r DCIM/ --resume results.jsonl      # a line per image; run again to continue
find scans -name '*.png' | digitlab classify --from-file - --csv --output results.csv
""")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="files, folders or globs")
    p.add_argument("--from-file", metavar="LIST", help="also read the paths listed in LIST, one a "
                   "line ('-': standard input)")
    p.add_argument("-r", "--recursive", action="store_true", help="read folders' sub-folders too")
    p.add_argument("--model", metavar="CHECKPOINT", help=MODEL_HELP)
    p.add_argument("--backend", choices=("torch", "onnxruntime", "torchscript"),
                   help="what runs the model (default: what the --model file holds: a checkpoint "
                        "in PyTorch, an ONNX file in onnxruntime, a TorchScript file in PyTorch's "
                        "TorchScript runtime)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "mps", "auto"),
                   help="where PyTorch runs the model (default: cpu; auto: CUDA, else MPS, else CPU)")
    p.add_argument("--top-k", type=positive_int, default=1, help="show the K likeliest classes")
    form = p.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_const", const="json", dest="format",
                      help="print a JSON array, one object per image")
    form.add_argument("--jsonl", action="store_const", const="jsonl", dest="format",
                      help="print a JSON object per line, each as soon as its image is read")
    form.add_argument("--csv", action="store_const", const="csv", dest="format",
                      help="print CSV: path, digit, label, confidence, no_digit, reason, top_k, error")
    p.add_argument("-o", "--output", metavar="FILE", help="write the results to FILE (whole or not "
                   "at all: it appears when the run ends) instead of standard output")
    p.add_argument("--resume", metavar="FILE", help="append JSON lines (or with --csv, CSV) to FILE "
                   "as images are read, skipping the images already in it: run the same command "
                   "again to continue an interrupted run")
    p.add_argument("--jobs", type=positive_int, metavar="N",
                   help="decode and preprocess in N worker processes (default: one per core; "
                        "1: all in this process)")
    p.add_argument("--preprocess", choices=("robust", "plain", "product", "naive"),
                   help="robust: find, crop and centre a digit (digit models' default); "
                        "product: trim, fit and centre one object, as Fashion-MNIST was made "
                        "(its models' default); plain: invert, crop, 20 px, centre by mass, "
                        "nothing more; naive: the tutorial's squash-to-28×28")
    p.add_argument("--min-confidence", type=probability, default=0.5, metavar="P",
                   help="below this the answer is 'no digit' (default 0.5)")
    p.add_argument("--number", action="store_true", help="read a number: several digits in a row")
    p.add_argument("--number-reader", choices=("line", "segment"), default="line",
                   help="with --number: line reads the whole string at once (a CTC line reader, "
                        "the default); segment splits it into digits and reads each")
    p.add_argument("--line-model", metavar="CHECKPOINT",
                   help="with --number: the line reader to use (default: the packaged one; "
                        "`digitlab train --recipe numbers` makes one)")
    p.add_argument("--show", nargs="?", const="classify-show", metavar="DIR",
                   help="write a picture per input (default folder: classify-show)")


@dataclass
class Run:
    """What a classify run did: files written, failures, pictures, the time it took."""

    written: int = 0
    failed: int = 0
    skipped: int = 0
    pictures: int = 0
    show_failed: bool = False
    start: float = field(default_factory=time.perf_counter)


def cmd_classify(args: argparse.Namespace) -> int:
    from digitlab.batch.outputs import locked_results

    fmt, run = output_format(args), Run()
    with locked_results(args.resume) if args.resume else contextlib.nullcontext():
        return classify_files(args, fmt, run)


def classify_files(args: argparse.Namespace, fmt: str, run: Run) -> int:
    from digitlab.batch.stream import StreamOptions, classify_stream, worker_pool

    inputs, total = classify_inputs(args, run)
    jobs = worker_count(args.jobs, total)
    with worker_pool(jobs) if jobs > 1 else contextlib.nullcontext() as pool:  # before the model
        predictor = load_predictor(args.model, args.backend, args.device, threads=1)
        run.start = time.perf_counter()  # the rate is of reading: loading torch and the model aside
        if args.line_model:
            predictor.use_line_reader(args.line_model)
        options = StreamOptions(top_k=args.top_k, pipeline=args.preprocess, number=args.number,
                                number_reader=args.number_reader,
                                min_confidence=args.min_confidence, keep_images=bool(args.show))
        with open_output(args, fmt) as (stream, header):
            results = classify_stream(predictor, inputs, options, pool)
            write_results(results, result_writer(stream, fmt, args, predictor, header), args, predictor,
                          run, total)
    report(run, args)
    return 1 if run.failed or run.show_failed else 0


def output_format(args: argparse.Namespace) -> str:
    """The format asked for (text by default; JSON lines with --resume unless --csv)."""
    if args.resume:
        if args.output:
            raise ConfigError("--resume FILE is where the results go; drop --output")
        if args.format == "json":
            raise ConfigError("--resume needs --jsonl or --csv: a JSON array cannot be continued")
        return args.format or ("csv" if Path(args.resume).suffix.lower() == ".csv" else "jsonl")
    return args.format or "text"


def classify_inputs(args: argparse.Namespace, run: Run) -> tuple[Iterable[Input], int | None]:
    """The files to read (without those --resume finds done) and how many, when known: a list
    from --from-file is read as it comes, so its length is not."""
    from digitlab.batch.inputs import InputProblem, iter_inputs, read_path_list
    from digitlab.batch.outputs import printable_path, read_done

    if not args.images and not args.from_file:
        raise ConfigError("give images, folders or globs to classify, or --from-file LIST")
    done = read_done(args.resume, output_format(args)) if args.resume else set()

    def todo(items: Iterable[Input]) -> Iterator[Input]:
        for item in items:
            if done and printable_path(item.path if isinstance(item, InputProblem) else item) in done:
                run.skipped += 1
            else:
                yield item

    listed = todo(iter_inputs(args.images, args.recursive))
    if not args.from_file:
        items = list(listed)
        return items, len(items)
    paths = read_path_list(open_path_list(args.from_file))
    return itertools.chain(listed, todo(iter_inputs(paths, args.recursive))), None


def open_path_list(name: str) -> IO[str]:
    """--from-file's list ('-': standard input), opened now so that a wrong name fails at once."""
    if name == "-":
        return sys.stdin
    try:
        return open(name, encoding="utf-8")  # read to its end by the run, closed at exit
    except OSError as e:
        raise ConfigError(f"--from-file {name}: {e.strerror or e}") from None


def worker_count(jobs: int | None, total: int | None) -> int:
    """--jobs, else one per core; a handful of files is read in this process."""
    from digitlab.batch.workers import default_jobs
    from digitlab.processes import cap_jobs

    if total is not None and total < IN_PROCESS_BELOW and jobs is None:
        return 1
    return cap_jobs(jobs) if jobs else default_jobs()


def load_predictor(model: str | None, backend: str | None, device: str = "cpu",
                   threads: int | None = None) -> Predictor:
    """The model to read with; `threads` for PyTorch and onnxruntime (1 for classify, beside
    busy workers or not: more wait on each other, as batches of 28×28 are small; on 2 busy
    cores, `classify --jobs 1` on 736 form cells took 12.8 s with torch's default, 7.4-9.9 s with 1)."""
    import torch

    from digitlab.checkpoints.shipped import is_shipped
    from digitlab.devices import resolve_device
    from digitlab.predicting.predictor import Predictor

    if threads:
        torch.set_num_threads(threads)
    if backend in ("onnxruntime", "torchscript") and is_shipped(model):
        raise ConfigError(f"--backend {backend} needs --model FILE (from `digitlab export`)")
    if backend == "onnxruntime" and device not in ("cpu", "auto"):
        raise ConfigError(f"--backend onnxruntime runs on the CPU; drop --device {device}")
    return Predictor.load(model, device=str(resolve_device(device)), backend=backend)


@contextlib.contextmanager
def open_output(args: argparse.Namespace, fmt: str) -> Iterator[tuple[IO[str], bool]]:
    """Standard output; --output FILE (temporary until the run ends, then renamed: whole or not
    at all); or --resume FILE, appended to as results come. Yields the stream and whether it
    needs a CSV header. A failed write is an OutputError naming the file."""
    from digitlab.files import atomic_path, output_error

    if args.resume:
        path = Path(args.resume)
        try:
            with open(path, "a", encoding="utf-8", newline="") as f:
                yield f, f.tell() == 0
        except OSError as e:
            if not _is_write_error(e, path):
                raise
            raise output_error(e, path) from None
    elif args.output:
        with atomic_path(args.output) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
            yield f, True
    else:
        try:
            yield sys.stdout, True
            sys.stdout.flush()
        except OSError as e:
            if isinstance(e, BrokenPipeError) or not _is_write_error(e, None):
                raise  # a closed pipe ends the command quietly (cli.main)
            with contextlib.suppress(OSError, ValueError):  # the unwritten rest cannot fail again at exit
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise output_error(e, "standard output") from None


def _is_write_error(error: OSError, path: Path | None) -> bool:
    # a write to an open stream names no file; opening the resume file names it
    return error.filename is None or (path is not None and Path(error.filename) == path)


def result_writer(stream: IO[str], fmt: str, args: argparse.Namespace, predictor: Predictor,
                  header: bool) -> ResultWriter:
    from digitlab.batch.outputs import ResultWriter

    nothing = "no digit" if predictor.reads_digits else "nothing recognised"
    return ResultWriter(stream, fmt, number=args.number, show=bool(args.show), nothing=nothing,
                        header=header)


def write_results(results: Iterable[FileReading], writer: ResultWriter, args: argparse.Namespace,
                  predictor: Predictor, run: Run, total: int | None) -> None:
    """Write each result as it comes (its picture first, with --show); errors to stderr; a
    progress bar on stderr when it is a terminal."""
    from tqdm import tqdm

    show = Path(args.show) if args.show else None
    # a bar on the terminal, unless the results are printed there too (each line is progress)
    lines_on_terminal = writer.stream is sys.stdout and sys.stdout.isatty()
    bar_shown = shows_progress(args) and sys.stderr.isatty() and not lines_on_terminal
    with tqdm(total=total, unit="image", disable=not bar_shown, file=sys.stderr, dynamic_ncols=True) as bar:
        last_flush = time.monotonic()
        for index, result in enumerate(results):
            picture = write_picture(result, predictor, show, index, run) if show else None
            writer.write(result, picture)
            run.written += 1
            if result.reading is None:
                run.failed += 1
                tqdm_write(f"digitlab: error: {result.error}")
            bar.update()
            if time.monotonic() - last_flush > 0.2:  # lines come out as images are read
                writer.stream.flush()
                last_flush = time.monotonic()
        writer.close()


def write_picture(result: FileReading, predictor: Predictor, folder: Path, index: int,
                  run: Run) -> Path | None:
    """The --show picture of one result; the first that cannot be written is reported once,
    and no more are tried (the results themselves are still written)."""
    from digitlab.predicting.results import NumberReading
    from digitlab.reports.show import write_show

    if result.reading is None or run.show_failed:
        return None
    nothing = "no digit" if predictor.reads_digits else "nothing recognised"
    reading = result.reading
    digits = list(reading.digits) if isinstance(reading, NumberReading) else [reading]
    explained = [predictor.explain(result.image, d) for d in digits] if result.image else []
    try:
        path = write_show(result, predictor.classes, folder, index, nothing,
                          [e for e in explained if e is not None])
    except DigitlabError as e:
        run.show_failed = True
        tqdm_write(f"digitlab: error: no pictures: {e}")
        return None
    run.pictures += 1
    return path


def report(run: Run, args: argparse.Namespace) -> None:
    """Where the pictures are, and how fast it went (on stderr: stdout holds the results)."""
    if run.pictures:
        print(f"pictures in {args.show.rstrip('/')}/", file=sys.stderr)
    seconds = time.perf_counter() - run.start
    skipped = f"; {run.skipped} already in {args.resume} skipped" if run.skipped else ""
    if run.written > 1 or run.skipped:
        print(f"{run.written} images in {seconds:.2f} s ({run.written / seconds:.0f} images/s, "
              f"reading, preprocessing and classifying){skipped}", file=sys.stderr)


def tqdm_write(line: str) -> None:
    """A line on stderr that leaves a progress bar there intact."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr)
