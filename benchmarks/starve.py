"""Can heavy uploads starve the service? /healthz latency while clients post a decompression bomb.

N clients post, over and over, a 340 KB 16-bit RGBA PNG of 39.7 megapixels (7280×5456: inside
the pixel limit; over a second and several hundred MB to decode and read) while a prober asks
/healthz every 50 ms on a fresh connection. Prints the /healthz p50/p99/max, what the clients
got (by status), and the server's peak memory. With the default settings the bomb is refused
from its header (413, the decoded-size cap); `--max-decoded-mb 400` lets it through, so the
image pool's bound, its 503s and the event loop staying free are what is measured.
`--half-open N` also holds N half-sent requests open throughout (the connection guard).

    python benchmarks/starve.py [--clients 8] [--seconds 20] [--workers 1] [--max-decoded-mb N]
    python benchmarks/starve.py --half-open 19000 --seconds 10

A measurement, never an assertion; tests/faults runs it briefly and checks what it saw.
"""

from __future__ import annotations

import argparse
import http.client
import os
import resource
import socket
import struct
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from load import free_port, percentile, start_server, wait_ready

HEALTH_TIMEOUT = 10.0  # a probe that gets no answer in this long counts as this long


def sixteen_bit_png(width: int = 7280, height: int = 5456) -> bytes:
    """A 16-bit RGBA PNG, white with a dark bar across its middle: tiny on disk, huge decoded."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = np.full((width, 4), 65535, dtype=">u2")
    white = b"\x00" + row.tobytes()  # filter byte "none", then the pixels
    row[width // 3: 2 * width // 3, :3] = 0
    ink = b"\x00" + row.tobytes()
    packer = zlib.compressobj(9)
    data = [packer.compress(ink if 2 * height // 5 < y < 3 * height // 5 else white) for y in range(height)]
    data.append(packer.flush())
    header = struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0)  # 16 bits, RGBA
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(data))
            + chunk(b"IEND", b""))


@dataclass
class Storm:
    """What a storm saw: the clients' answers by status, and /healthz latencies (ms)."""

    statuses: Counter[str] = field(default_factory=Counter)
    health_ms: list[float] = field(default_factory=list)
    health_failures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def post_until(host: str, port: int, body: bytes, deadline: float, storm: Storm) -> None:
    """Post `body` to /api/v1/predict until the deadline, reconnecting after any error."""
    connection = http.client.HTTPConnection(host, port, timeout=60)
    while time.monotonic() < deadline:
        try:
            connection.request("POST", "/api/v1/predict", body, {"Content-Type": "image/png"})
            response = connection.getresponse()
            response.read()
            kind = str(response.status)
            if response.getheader("connection", "").lower() == "close":
                connection.close()
        except (OSError, http.client.HTTPException) as e:
            kind = type(e).__name__
            connection.close()
            connection = http.client.HTTPConnection(host, port, timeout=60)
        with storm.lock:
            storm.statuses[kind] += 1
    connection.close()


def probe_until(host: str, port: int, deadline: float, storm: Storm) -> None:
    """GET /healthz every 50 ms on a new connection; a failure or non-200 counts as a failure."""
    while time.monotonic() < deadline:
        began = time.perf_counter()
        ok = False
        try:
            connection = http.client.HTTPConnection(host, port, timeout=HEALTH_TIMEOUT)
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            ok = response.status == 200 and response.read() == b'{"status":"ok"}'
            connection.close()
        except (OSError, http.client.HTTPException):
            pass
        elapsed = 1000 * (time.perf_counter() - began)
        storm.health_ms.append(elapsed if ok else max(elapsed, 1000 * HEALTH_TIMEOUT))
        storm.health_failures += not ok
        time.sleep(max(0.0, 0.05 - elapsed / 1000))


def run_storm(base: str, body: bytes, clients: int, seconds: float) -> Storm:
    """`clients` threads post `body` for `seconds` while /healthz is probed."""
    host, port = base.split("//")[1].split(":")
    storm, deadline = Storm(), time.monotonic() + seconds
    threads = [threading.Thread(target=post_until, args=(host, int(port), body, deadline, storm))
               for _ in range(clients)]
    threads.append(threading.Thread(target=probe_until, args=(host, int(port), deadline, storm)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return storm


def hold_half_open(base: str, count: int) -> list[socket.socket]:
    """`count` connections that each sent the first half of a request head, and no more."""
    host, port = base.split("//")[1].split(":")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # each is a file descriptor here too
    held = []
    for _ in range(count):
        try:
            s = socket.create_connection((host, int(port)), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            held.append(s)
        except OSError:
            break
    return held


def peak_memory_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM), in MB; NaN where /proc has no such line."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def report(storm: Storm, seconds: float, clients: int) -> None:
    health = storm.health_ms
    print(f"clients     {clients} posting the 16-bit 39.7 MP PNG for {seconds:.0f} s: "
          + ", ".join(f"{count} × {kind}" for kind, count in sorted(storm.statuses.items())))
    print(f"healthz     {len(health)} probes, {storm.health_failures} failed; p50 "
          f"{percentile(health, 50):.1f} ms, p99 {percentile(health, 99):.1f} ms, max {max(health):.1f} ms")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8, help="clients posting the bomb (default 8)")
    parser.add_argument("--seconds", type=float, default=20, help="how long (default 20)")
    parser.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    parser.add_argument("--max-decoded-mb", type=int, help="the server's decoded-size cap (default: its own)")
    parser.add_argument("--half-open", type=int, default=0, help="half-sent requests to hold open")
    args = parser.parse_args(argv)

    body = sixteen_bit_png()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = {} if args.max_decoded_mb is None else {"max_decoded_bytes": str(args.max_decoded_mb << 20)}
    server = start_server(None, port, args.workers, settings)
    held: list[socket.socket] = []
    try:
        wait_ready(base, server)
        held = hold_half_open(base, args.half_open)
        storm = run_storm(base, body, args.clients, args.seconds)
        memory = peak_memory_mb(server.pid)
    finally:
        for s in held:
            s.close()
        server.terminate()
        server.wait(timeout=30)
    print(f"cpus        {os.cpu_count()} (shared with anything else running); server workers "
          f"{args.workers}; decoded-size cap {args.max_decoded_mb or 'default'} MB")
    if args.half_open:
        print(f"half-open   {len(held)} half-sent requests opened before the storm")
    report(storm, args.seconds, args.clients)
    which = "the supervisor, not its workers" if args.workers > 1 else "VmHWM"
    print(f"memory      server peak {memory:.0f} MB ({which})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
