"""Reading latency, old against new in the same run: the Python API, the service, classify.

A baseline git ref (default main) is exported with `git archive` into a temporary folder, and
each of the two trees is measured in its own processes, alternately, `--rounds` times:

  - per-picture median time of `model.read(picture)` (Python API, one torch thread; wall
    clock, and CPU time, which a busy machine disturbs less) for four
    kinds of picture: a 150×150 drawing, a 1,000×1,000 photo (uneven light, noise, colour),
    a 157×111 form cell (a scan with the cell's frame) and a 28×28 MNIST-format picture;
  - `/api/v1/predict` p50 and p99 over `--requests` sequential POSTs of the drawing to a
    `digitlab serve` (one worker) on a free port, one keep-alive connection;
  - `classify FOLDER --jsonl` on a folder of `--cells` form-cell-sized pictures, as a whole
    command (start-up included): pictures/s.

The pictures are drawn here (no data set needed). It prints the medians over rounds and the
ratios old/new; it asserts nothing about time (the machine may be busy: quote what it says).

    python benchmarks/latency.py [--baseline main] [--rounds 3] [--requests 200] [--cells 736]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("drawing", "photo", "form cell", "mnist")


def _strokes(draw: ImageDraw.ImageDraw, points: list[tuple[float, float]], width: int, fill) -> None:
    draw.line(points, fill=fill, width=width, joint="curve")


def drawing() -> Image.Image:
    """A 7 drawn on the page's canvas: black strokes on white, 150×150."""
    image = Image.new("L", (150, 150), 255)
    _strokes(ImageDraw.Draw(image), [(35, 30), (115, 30), (80, 80), (60, 125)], 11, 0)
    return image


def photo() -> Image.Image:
    """A 4 in blue pen photographed on paper: 1,000×1,000 RGB, light falling off, noise."""
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:1000, 0:1000].astype(np.float32) / 1000
    light = 225 - 60 * xs * ys - 25 * (ys - 0.5) ** 2
    paper = np.stack([light * 0.98, light * 0.97, light * 0.92], axis=-1)
    ink = Image.new("L", (1000, 1000), 0)
    _strokes(ImageDraw.Draw(ink), [(600, 220), (330, 620), (700, 620)], 34, 255)
    _strokes(ImageDraw.Draw(ink), [(600, 220), (600, 820)], 34, 255)
    alpha = np.asarray(ink, np.float32)[..., None] / 255
    pen = np.array([40, 50, 120], np.float32)
    pixels = paper * (1 - alpha) + pen * alpha + rng.normal(0, 4, (1000, 1000, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def form_cell(seed: int = 0) -> Image.Image:
    """A 3 written in a form's cell, scanned: 157×111 grey, the cell's frame at its edges."""
    rng = np.random.default_rng(seed)
    image = Image.new("L", (157, 111), 236)
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, 156, 110], outline=120, width=2)
    dx, dy = rng.integers(-12, 13), rng.integers(-6, 7)
    points = [(62, 25), (92, 22), (95, 45), (75, 55), (98, 66), (92, 88), (60, 86)]
    _strokes(draw, [(x + dx, y + dy) for x, y in points], 5, 60)
    pixels = np.asarray(image, np.float32) + rng.normal(0, 3, (111, 157))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def mnist() -> Image.Image:
    """A 0 in MNIST's format: 28×28, light on black, 20-px box centred."""
    big = Image.new("L", (80, 80), 0)
    ImageDraw.Draw(big).ellipse([12, 2, 68, 78], outline=255, width=9)
    image = Image.new("L", (28, 28), 0)
    image.paste(big.resize((20, 20), Image.Resampling.BOX), (4, 4))
    return image


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


# ---------------------------------------------------------------- measuring one tree (child)

def measure_reads(repeats: int) -> dict[str, float]:
    """Median ms of model.read per kind of picture, one torch thread: wall-clock time, and the
    process's CPU time (less at the mercy of other work on a busy machine)."""
    import torch

    import digitlab
    torch.set_num_threads(1)  # what the new load() does by default; the old one did not
    model = digitlab.load()
    pictures = {"drawing": drawing(), "photo": photo(), "form cell": form_cell(), "mnist": mnist()}
    out = {}
    for kind, picture in pictures.items():
        for _ in range(3):
            model.read(picture)
        times, cpu = [], []
        for _ in range(repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            model.read(picture)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        out[kind] = 1000 * statistics.median(times)
        out[f"{kind}, CPU"] = 1000 * statistics.median(cpu)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure_service(src: Path, requests: int) -> dict[str, float]:
    """p50 and p99 ms of POST /api/v1/predict (the drawing), sequential, one connection."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(src)}
    server = subprocess.Popen([sys.executable, "-m", "digitlab", "serve", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        deadline = time.monotonic() + 120
        while True:
            try:
                connection.request("GET", "/healthz")
                connection.getresponse().read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        body, times = png(drawing()), []
        for i in range(requests + 5):
            start = time.perf_counter()
            connection.request("POST", "/api/v1/predict", body, {"content-type": "image/png"})
            response = connection.getresponse()
            response.read()
            assert response.status == 200, response.status
            if i >= 5:  # the first few warm up
                times.append(time.perf_counter() - start)
        times.sort()
        return {"p50": 1000 * times[len(times) // 2], "p99": 1000 * times[int(0.99 * (len(times) - 1))]}
    finally:
        server.terminate()
        server.wait(timeout=30)


def measure_classify(src: Path, folder: Path) -> dict[str, float]:
    """Pictures/s of `classify FOLDER --jsonl`, start-up included, and the CPU seconds it and
    its workers used (what a busy machine cannot inflate by making it wait)."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    count = len(list(folder.iterdir()))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "digitlab", "classify", str(folder), "--jsonl"],
                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return {"classify --jsonl (pictures/s)": count / seconds, "classify --jsonl, CPU (s)": cpu}


# ---------------------------------------------------------------- the run (parent)

def export(ref: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def child(src: Path, repeats: int) -> dict[str, float]:
    code = (f"import sys, json; sys.path[:0] = [{str(src)!r}, {str(ROOT / 'benchmarks')!r}]; "
            f"import latency; print(json.dumps(latency.measure_reads({repeats})))")
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="main", help="git ref of the old tree (default main)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=50, help="reads per picture and round")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--cells", type=int, default=736, help="pictures in the classify folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"old": export(args.baseline, Path(tmp)), "new": ROOT / "src"}
        folder = Path(tmp) / "cells"
        folder.mkdir()
        for i in range(args.cells):
            form_cell(i).save(folder / f"{i:04d}.png")
        results: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
        for round_ in range(args.rounds):
            order = list(trees.items()) if round_ % 2 == 0 else list(trees.items())[::-1]
            for name, src in order:  # alternately first: a machine that slows down favours neither
                found = {f"read {k} (ms)": v for k, v in child(src, args.repeats).items()}
                found.update({f"service {k} (ms)": v
                              for k, v in measure_service(src, args.requests).items()})
                found.update(measure_classify(src, folder))
                for key, value in found.items():
                    results[name].setdefault(key, []).append(value)
    print(f"old = {args.baseline}, new = this tree; medians of {args.rounds} round(s), "
          f"{os.cpu_count()} CPUs")
    print(f"{'':34s} {'old':>9s} {'new':>9s} {'speed-up':>8s}")
    for key in results["new"]:
        old, new = statistics.median(results["old"][key]), statistics.median(results["new"][key])
        ratio = new / old if "pictures/s" in key else old / new  # > 1: new is faster (or leaner)
        print(f"{key:34s} {old:9.2f} {new:9.2f} {ratio:7.2f}x")


if __name__ == "__main__":
    main()
