"""Load on the web service: N concurrent clients post a 280×280 PNG for a fixed time.

The server runs in a subprocess (`digitlab.service.serve`, as `digitlab serve` runs it) so its
work does not share the clients' interpreter; the clients are asyncio tasks on one httpx
client. Prints requests/s, client-side p50/p99 latency, errors, and the server-side p50
from the X-Process-Time-Ms header. A measurement, never an assertion.

    python benchmarks/load.py [--clients 8] [--seconds 30] [--model CHECKPOINT] [--number]
    python benchmarks/load.py --url http://127.0.0.1:8000   # an already running server
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
from PIL import Image, ImageDraw

SERVER = """
import logging, sys
from digitlab.service import ServiceSettings, serve
logging.basicConfig(level=logging.WARNING)
serve(ServiceSettings(model=sys.argv[1] or None), "127.0.0.1", int(sys.argv[2]))
"""


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)  # ms, successful requests
    server_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


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


def start_server(model: str | None, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", SERVER, model or "", str(port)])


def wait_ready(base: str, server: subprocess.Popen[bytes] | None, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server is not None and server.poll() is not None:
            sys.exit(f"load.py: the server exited with status {server.returncode}")
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    sys.exit(f"load.py: {base} did not answer /healthz within {timeout:.0f} s")


async def one_client(http: httpx.AsyncClient, url: str, body: bytes, deadline: float, tally: Tally) -> None:
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        try:
            response = await http.post(url, content=body, headers={"content-type": "image/png"})
        except httpx.HTTPError as e:
            tally.error(type(e).__name__)
            continue
        elapsed = 1000 * (time.perf_counter() - start)
        if response.status_code != 200:
            tally.error(f"HTTP {response.status_code}")
            continue
        tally.latencies.append(elapsed)
        if "x-process-time-ms" in response.headers:
            tally.server_ms.append(float(response.headers["x-process-time-ms"]))


async def run_load(url: str, body: bytes, clients: int, seconds: float) -> tuple[Tally, float]:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=60) as http:
        for _ in range(3):  # warm-up: first-request costs are not the steady state
            (await http.post(url, content=body, headers={"content-type": "image/png"})).raise_for_status()
        tally = Tally()
        start = time.perf_counter()
        deadline = start + seconds
        await asyncio.gather(*(one_client(http, url, body, deadline, tally) for _ in range(clients)))
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
                                 ("server", tally.server_ms, "X-Process-Time-Ms")):
        p50, p99 = percentile(values, 50), percentile(values, 99)
        print(f"{name:<11} p50 {p50:.1f} ms, p99 {p99:.1f} ms ({source})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--seconds", type=float, default=30, help="how long to send (default 30)")
    parser.add_argument("--model", help="checkpoint for the server (default: the packaged model)")
    parser.add_argument("--number", action="store_true", help="post to /api/v1/predict/number")
    parser.add_argument("--url", help="use this running server instead of starting one")
    args = parser.parse_args(argv)

    server = None
    base = args.url.rstrip("/") if args.url else f"http://127.0.0.1:{free_port()}"
    if not args.url:
        server = start_server(args.model, int(base.rsplit(":", 1)[1]))
    try:
        wait_ready(base, server)
        url = base + ("/api/v1/predict/number" if args.number else "/api/v1/predict")
        tally, elapsed = asyncio.run(run_load(url, drawn_seven(), args.clients, args.seconds))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    print(f"cpus        {os.cpu_count()} (shared with anything else running)")
    report(tally, elapsed, args.clients, url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
