"""What the service tests share: a real predictor without training, images, a live server."""

from __future__ import annotations

import base64
import io
import os
import resource
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from digitlab.checkpoints.format import Checkpoint
from digitlab.models import create_model
from digitlab.predicting.predictor import Predictor
from tests.drawing import digit_image, draw_digit

MB = 1024 * 1024


def untrained_predictor(seed: int = 0) -> Predictor:
    """A real Predictor around a random mlp: every code path runs, no training needed."""
    torch.manual_seed(seed)
    model = create_model("mlp").eval()
    checkpoint = Checkpoint(model_name="mlp", model_args={}, state_dict=model.state_dict(),
                            config={"recipe": "tutorial-mlp"}, metrics={"accuracy": 0.1})
    return Predictor.from_model(model, checkpoint)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def declared_png(width: int, height: int) -> bytes:
    """A PNG whose header declares width×height but whose pixel data is a 16-byte stub."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


def number_image(digits: str = "274") -> Image.Image:
    image = Image.new("L", (170 * len(digits) + 40, 280), 255)
    for i, digit in enumerate(digits):
        draw_digit(image, digit, (40 + 170 * i, 50, 150 + 170 * i, 230), stroke=14)
    return image


SEVEN = png(digit_image("7", size=280))
RAW = {"content-type": "image/png"}


def decode_data_url(url: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix)
    return Image.open(io.BytesIO(base64.b64decode(url[len(prefix):])))



SRC = Path(__file__).resolve().parents[2] / "src"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, timeout: float = 10, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of a plain request (errors included, not raised)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


@contextmanager
def live_server(env: dict[str, str] | None = None, workers: int = 1, start_timeout: float = 180,
                open_files: int | None = None) -> Iterator[str]:
    """`python -m digitlab serve` in its own process, configured by DIGITLAB_* variables, with
    the model shipped in the package; yields its base URL once /readyz says 200, stops it after.
    `open_files` caps the file descriptors the server may open (soft and hard limit)."""
    port = free_port()
    environment = {
        **os.environ, "DIGITLAB_HOST": "127.0.0.1", "DIGITLAB_PORT": str(port),
        "DIGITLAB_WORKERS": str(workers), **(env or {}),
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    with tempfile.TemporaryFile() as log:
        limit = None if open_files is None else (
            lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files)))
        server = subprocess.Popen([sys.executable, "-m", "digitlab", "-q", "serve"], env=environment,
                                  stdout=log, stderr=subprocess.STDOUT, preexec_fn=limit)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(base, server, log, start_timeout)
            yield base
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def wait_ready(base: str, server: subprocess.Popen[bytes], log: Any, timeout: float) -> None:
    """Until `base`/readyz answers 200; the server's output (from `log`, a file, or else its
    pipe) in the error if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            if log is not None:
                log.seek(0)
            output = log.read() if log is not None else server.communicate()[0]
            raise AssertionError(f"the server exited ({server.returncode}): {output.decode()[-2000:]}")
        try:
            if get(base + "/readyz", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{base} was not ready within {timeout:.0f} s")
