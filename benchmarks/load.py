"""Load on the web service: N concurrent clients post a 280×280 PNG for a fixed time.

The server runs in subprocesses (`digitlab serve --workers N`, default 2: one per core of the
2-core machines this was written on) so its work does not share the clients' interpreter.
Its settings come from DIGITLAB_* environment variables, as in a container.
Each client is a thread with one keep-alive connection (http.client: a few hundred µs of
client CPU per request, where httpx's asyncio client took over a millisecond of the same two
cores). Prints requests/s, client-side p50/p99 latency, errors, and the server-side p50/p99
from the X-Process-Time-Ms header; then the requests it sent (warm-up included) beside those
the server counted in /metrics (summed over its workers), which must match. A measurement,
never an assertion.

    python benchmarks/load.py [--clients 8] [--seconds 30] [--workers 2] [--model CHECKPOINT]
    python benchmarks/load.py --clients 1 --seconds 10   # one request at a time: latency
    python benchmarks/load.py --url http://127.0.0.1:8000   # an already running server
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from PIL import Image, ImageDraw


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)  # ms, successful requests
    server_ms: list[float] = field(default_factory=list)
    work_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    answered: int = 0  # responses received, any status, warm-up included
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, kind: str) -> None:
        with self.lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1

    def count(self, answered: int) -> None:
        with self.lock:
            self.answered += answered


def drawn_seven(size: int = 280) -> bytes:
    """A canvas-like PNG: dark '7' on white, as the page sends."""
    image = Image.new("L", (size, size), 255)
    s = size / 280
    ImageDraw.Draw(image).line([(80 * s, 60 * s), (200 * s, 60 * s), (125 * s, 230 * s)],
                               fill=0, width=round(18 * s), joint="curve")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(model: str | None, port: int, workers: int,
                 settings: dict[str, str] | None = None, **popen: Any) -> subprocess.Popen[bytes]:
    """`digitlab serve`, configured as a container would be: by DIGITLAB_* variables."""
    env = {**os.environ, "DIGITLAB_HOST": "127.0.0.1", "DIGITLAB_PORT": str(port),
           "DIGITLAB_WORKERS": str(workers), **({"DIGITLAB_MODEL": model} if model else {}),
           **{f"DIGITLAB_{name.upper()}": value for name, value in (settings or {}).items()}}
    return subprocess.Popen([sys.executable, "-m", "digitlab", "-q", "serve"], env=env, **popen)


def scrape(base: str) -> list[Any]:
    """The samples of the server's /metrics (every worker's, summed by the server)."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(base + "/metrics", timeout=30) as response:
        text = response.read().decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def served_requests(base: str, route: str) -> int:
    """How many requests to `route` the server has answered, any status, from its /metrics."""
    return round(sum(s.value for s in scrape(base)
                     if s.name == "digitlab_http_requests_total" and s.labels.get("route") == route))


def wait_for_workers(base: str, workers: int, timeout: float) -> None:
    """Until /metrics shows `workers` live server processes (each loads its own model)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(s.name == "digitlab_worker_up" and s.value == 1 for s in scrape(base)) >= workers:
            return
        time.sleep(0.5)
    sys.exit(f"load.py: {workers} workers did not start within {timeout:.0f} s")


def wait_ready(base: str, server: subprocess.Popen[bytes] | None, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server is not None and server.poll() is not None:
            sys.exit(f"load.py: the server exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    sys.exit(f"load.py: {base} was not ready (/readyz) within {timeout:.0f} s")


def one_client(url: str, body: bytes, start: threading.Barrier, deadline: list[float],
               tally: Tally) -> None:
    """Post `body` over one keep-alive connection until the deadline; reconnect after errors."""
    parts = urlsplit(url)
    headers = {"Content-Type": "image/png"}
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    for _ in range(3):  # warm-up: first-request costs are not the steady state
        connection.request("POST", parts.path, body, headers)
        connection.getresponse().read()
    latencies, server_ms, work_ms, answered = [], [], [], 3
    start.wait()
    while time.perf_counter() < deadline[0]:
        began = time.perf_counter()
        try:
            connection.request("POST", parts.path, body, headers)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as e:
            tally.error(type(e).__name__)
            connection.close()
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
            continue
        elapsed = 1000 * (time.perf_counter() - began)
        answered += 1
        if response.status != 200:
            tally.error(f"HTTP {response.status}")
            continue
        latencies.append(elapsed)
        if (header := response.getheader("x-process-time-ms")) is not None:
            server_ms.append(float(header))
        for part in (response.getheader("server-timing") or "").split(","):
            if part.strip().startswith("work;dur="):
                work_ms.append(float(part.split("=")[1]))
    connection.close()
    tally.count(answered)
    with tally.lock:
        tally.latencies += latencies
        tally.server_ms += server_ms
        tally.work_ms += work_ms


def run_load(url: str, body: bytes, clients: int, seconds: float) -> tuple[Tally, float]:
    tally, deadline = Tally(), [0.0]

    def go() -> None:  # run by the barrier once every client has warmed up, before any goes on
        deadline[0] = time.perf_counter() + seconds

    ready = threading.Barrier(clients + 1, action=go)
    threads = [threading.Thread(target=one_client, args=(url, body, ready, deadline, tally))
               for _ in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    start = deadline[0] - seconds
    for thread in threads:
        thread.join()
    return tally, time.perf_counter() - start


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]); NaN when there are no values."""
    if not values:
        return float("nan")
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, max(0, round(q / 100 * len(ranked) + 0.5) - 1))]


def report(tally: Tally, elapsed: float, clients: int, url: str) -> None:
    done = len(tally.latencies)
    errors = sum(tally.errors.values())
    print(f"target      {url}")
    print(f"clients     {clients}, {elapsed:.1f} s, {done} ok, {errors} errors"
          + (f" {tally.errors}" if errors else ""))
    print(f"throughput  {done / elapsed:.1f} requests/s")
    for name, values, source in (("latency", tally.latencies, "client side"),
                                 ("server", tally.server_ms, "X-Process-Time-Ms: arrival to response"),
                                 ("work", tally.work_ms, "Server-Timing work: decode, read, describe")):
        p50, p99 = percentile(values, 50), percentile(values, 99)
        print(f"{name:<11} p50 {p50:.1f} ms, p99 {p99:.1f} ms ({source})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--seconds", type=float, default=30, help="how long to send (default 30)")
    parser.add_argument("--workers", type=int, default=2, help="server processes (default 2)")
    parser.add_argument("--settle", type=float, default=120,
                        help="seconds to wait for every worker to load after the first answers")
    parser.add_argument("--model", help="checkpoint for the server (default: the packaged model)")
    parser.add_argument("--number", action="store_true", help="post to /api/v1/predict/number")
    parser.add_argument("--url", help="use this running server instead of starting one")
    args = parser.parse_args(argv)

    server = None
    base = args.url.rstrip("/") if args.url else f"http://127.0.0.1:{free_port()}"
    if not args.url:
        server = start_server(args.model, int(base.rsplit(":", 1)[1]), args.workers)
    try:
        wait_ready(base, server)
        if server is not None and args.workers > 1:
            wait_for_workers(base, args.workers, args.settle)  # /readyz answered from the first one
        route = "/api/v1/predict/number" if args.number else "/api/v1/predict"
        before = served_requests(base, route)
        tally, elapsed = run_load(base + route, drawn_seven(), args.clients, args.seconds)
        # A worker counts a request just after sending its answer; on a busy machine it may
        # be descheduled in between, so give it a moment before reading the count.
        time.sleep(1)
        served = served_requests(base, route) - before
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    print(f"cpus        {os.cpu_count()} (shared with anything else running); "
          f"server workers {'?' if args.url else args.workers}")
    report(tally, elapsed, args.clients, base + route)
    print(f"counted     {tally.answered} answers received here (warm-up included), "
          f"{served} in the server's /metrics: {'match' if served == tally.answered else 'MISMATCH'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
