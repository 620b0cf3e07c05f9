"""The service against clients that leave early or send oversized heads, and its worker
processes when `serve` itself is killed: each a real server process.

Bounded: a few connections each, every process stopped by the test.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.helpers import SRC, free_port, get, live_server, wait_ready

pytestmark = [pytest.mark.faults, pytest.mark.slow]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with live_server() as base:
        yield base


def connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def counted(base: str, status: str) -> float:
    """How many requests /metrics counts with `status`, summed over routes and methods."""
    text = get(base + "/metrics")[2].decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("digitlab_http_requests_total{") and f'status="{status}"' in line)


def test_a_client_that_leaves_mid_body_is_a_499_never_a_500(server):
    before_500, before_499 = counted(server, "500"), counted(server, "499")
    for _ in range(3):
        with connect(server) as s:
            s.sendall(b"POST /api/v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                      b"Content-Length: 100000\r\n\r\n" + b"\x89PNG" * 100)
            time.sleep(0.3)
    deadline = time.monotonic() + 10
    while counted(server, "499") < before_499 + 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert counted(server, "499") == before_499 + 3
    assert counted(server, "500") == before_500


def test_a_100_kb_head_in_one_piece_is_refused_with_431(server):
    head = (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
    with connect(server) as s:
        s.sendall(head)
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 431")
    assert get(server + "/healthz")[0] == 200


def test_a_redirect_never_names_the_host_the_client_gave(server):
    with connect(server) as s:
        s.sendall(b"GET /static HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
        answer = s.recv(4096).decode()
    assert answer.split()[1] in ("301", "307", "308")
    assert "evil.example" not in answer
    assert "\r\nlocation: /static/\r\n" in answer.lower()


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def start_serve(port: int, log) -> subprocess.Popen[bytes]:
    environment = {**os.environ, "DIGITLAB_HOST": "127.0.0.1", "DIGITLAB_PORT": str(port),
                   "DIGITLAB_WORKERS": "2",
                   "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-m", "digitlab", "-q", "serve"], env=environment,
                            stdout=log, stderr=subprocess.STDOUT)


def test_killing_serve_stops_its_workers_and_a_restart_binds_the_port():
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        first = start_serve(port, log)
        workers: list[int] = []
        try:
            wait_ready(base, first, log, 180)
            workers = children(first.pid)
            assert len(workers) >= 2
            os.kill(first.pid, signal.SIGKILL)
            first.wait()
            deadline = time.monotonic() + 30
            while any(alive(w) for w in workers) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not any(alive(w) for w in workers), "serve's workers outlived it"
            second = start_serve(port, log)
            try:
                wait_ready(base, second, log, 180)
            finally:
                second.terminate()
                second.wait(timeout=30)
        finally:
            for pid in workers:
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
