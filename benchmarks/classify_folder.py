"""`digitlab classify` on folders of PNG files, timed as whole commands (start-up included).

Writes the 10,000 MNIST test digits as PNG files into a temporary folder (and, for the
memory figure, 100,000 files: the test digits ten times over), then runs, alternately,
median of --repeats:

  - `classify FOLDER --jsonl` (a line per image as it is read) and `--json` (one array);
  - with --baseline SRC (the `src` folder of another checkout, e.g. main's:
    `git archive main src | tar -x -C /tmp/base`), that checkout's `classify FOLDER --json`,
    so every ratio is against a baseline measured in the same run, on the same machine;
  - peak resident memory (`/usr/bin/time -v`: the largest of the process and its workers)
    of `--jsonl` on 10,000 and on 100,000 files.

It prints images/s, the ratios and the memory; it asserts nothing about time.

    python benchmarks/classify_folder.py [--baseline /tmp/base/src] [--repeats 3] [--jobs N]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from digitlab import data

SRC = Path(__file__).resolve().parents[1] / "src"


def write_folder(folder: Path, images: np.ndarray, copies: int = 1) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    for copy in range(copies):
        for i, image in enumerate(images):
            Image.fromarray(image).save(folder / f"{copy:02d}-{i:05d}.png")
    return copies * len(images)


def run(src: Path, argv: list[str], jobs: int | None) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (KiB) and stdout of `python -m digitlab classify ...` from `src`."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, "-m", "digitlab", "classify", *argv]
    if jobs and src == SRC:
        command += ["--jobs", str(jobs)]
    with tempfile.TemporaryFile("w+") as out:
        start = time.perf_counter()
        result = subprocess.run(["/usr/bin/time", "-v", *command], env=env, stdout=out,
                                stderr=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - start
        out.seek(0)
        stdout = out.read()
    if result.returncode not in (0, 1):  # 1: some file was unreadable, not a failed run
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)[1])
    return seconds, peak, stdout


def accuracy(stdout: str, labels: np.ndarray, lines: bool) -> float:
    records = [json.loads(line) for line in stdout.splitlines()] if lines else json.loads(stdout)
    right = sum(r.get("label") == str(labels[int(Path(r["path"]).stem.split("-")[1])]) for r in records)
    return right / len(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="src folder of the checkout to compare with")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", type=int, help="classify --jobs (default: its own, one per core)")
    parser.add_argument("--no-memory", action="store_true", help="skip the 100,000-file run")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()

    images, labels = data.load_split(data.resolve_root(args.data_dir), train=False)
    pixels, labels = images.numpy(), labels.numpy()
    with tempfile.TemporaryDirectory(prefix="classify-folder-") as tmp:
        folder = Path(tmp) / "10k"
        count = write_folder(folder, pixels)
        runs = {"--jsonl": (SRC, ["--jsonl"]), "--json": (SRC, ["--json"])}
        if args.baseline:
            runs["baseline --json"] = (args.baseline, ["--json"])
        times: dict[str, list[float]] = {name: [] for name in runs}
        peaks: dict[str, list[int]] = {name: [] for name in runs}
        right: dict[str, float] = {}
        for _ in range(args.repeats):  # alternately, so that every one sees the same machine
            for name, (src, flags) in runs.items():
                seconds, peak, stdout = run(src, [str(folder), *flags], args.jobs)
                times[name].append(seconds)
                peaks[name].append(peak)
                right[name] = accuracy(stdout, labels, lines=name == "--jsonl")
        print(f"classify on a folder of {count:,} MNIST test digits as PNG files, whole command, "
              f"median of {args.repeats} (cores: {os.cpu_count()}, load {os.getloadavg()[0]:.1f}):")
        for name in runs:
            seconds = statistics.median(times[name])
            ratio = (f", {statistics.median(times['baseline --json']) / seconds:.2f}× the baseline"
                     if args.baseline else "")
            print(f"  {name:16s} {seconds:6.2f} s  {count / seconds:6.0f} images/s{ratio}  "
                  f"peak RSS {statistics.median(peaks[name]) / 1024:5.0f} MiB  "
                  f"({100 * right[name]:.2f}% right, no digit counted wrong)")
        if not args.no_memory:
            big = Path(tmp) / "100k"
            total = write_folder(big, pixels, copies=10)
            seconds, peak, _ = run(SRC, [str(big), "--jsonl"], args.jobs)
            small = statistics.median(peaks["--jsonl"])
            print(f"  --jsonl on {total:,} files: {seconds:.1f} s ({total / seconds:.0f} images/s), peak RSS "
                  f"{peak / 1024:.0f} MiB = {peak / small:.2f}× the {count:,}-file run's")


if __name__ == "__main__":
    main()
