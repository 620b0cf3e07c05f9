"""Hostile clients against a real server process: each gets its clear error, and the server
stays healthy (/healthz answers, and a plain request is read).

Bounded: a few seconds of storm, a few hundred connections, all closed by the test.
"""

from __future__ import annotations

import json
import resource
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.service.helpers import MB, RAW, SEVEN, get, live_server

pytestmark = [pytest.mark.faults, pytest.mark.slow]

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
HEALTHY_MS = 1000  # generous on a shared machine: benchmarks/starve.py measures the real p99


@pytest.fixture(scope="module")
def starve() -> Iterator[ModuleType]:
    """benchmarks/starve.py: the storm and the bomb are the benchmark's own."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCHMARKS))
        import starve

        yield starve
        sys.modules.pop("starve", None)
        sys.modules.pop("load", None)


@pytest.fixture(scope="module")
def bomb(starve) -> bytes:
    return starve.sixteen_bit_png()  # 7280×5456, 16-bit RGBA: ~340 KB


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with live_server() as base:
        yield base


def assert_serving(base: str) -> None:
    """The server answers /healthz and reads a plain digit (waiting out a queue it still has)."""
    assert get(base + "/healthz")[0] == 200
    deadline = time.monotonic() + 60
    while True:
        request = urllib.request.Request(base + "/api/v1/predict", data=SEVEN, headers=RAW)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                assert json.loads(response.read())["digit"] == 7
                return
        except urllib.error.HTTPError as e:
            assert e.code == 503 and time.monotonic() < deadline, e.read()
            time.sleep(1)


def test_the_16_bit_bomb_is_refused_from_its_header_while_healthz_answers(server, starve, bomb):
    storm = starve.run_storm(server, bomb, clients=8, seconds=4)
    assert set(storm.statuses) == {"413"}, storm.statuses
    assert storm.health_failures == 0 and max(storm.health_ms) < HEALTHY_MS, storm.health_ms
    assert_serving(server)


def test_bombs_let_through_are_read_in_the_pool_while_healthz_answers(starve, bomb):
    with live_server({"DIGITLAB_MAX_DECODED_BYTES": str(400 * MB)}) as base:
        storm = starve.run_storm(base, bomb, clients=4, seconds=6)
        assert set(storm.statuses) <= {"200", "503"}, storm.statuses  # read, or busy: never a 500
        assert storm.health_failures == 0 and max(storm.health_ms) < HEALTHY_MS, storm.health_ms
        assert_serving(base)


@pytest.mark.parametrize("megabytes", [6, 30])
def test_an_oversized_body_sent_whole_by_urllib_gets_the_413(server, megabytes):
    # urllib sends the whole body (no Expect: 100-continue) and Connection: close before
    # reading: unless the server reads it first, the client gets a connection reset.
    request = urllib.request.Request(server + "/api/v1/predict", data=b"\0" * (megabytes * MB), headers=RAW)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=60)
    assert refused.value.code == 413 and json.loads(refused.value.read())["error"] == "payload_too_large"
    assert_serving(server)


def test_an_unsupported_body_sent_whole_by_urllib_gets_the_415(server):
    request = urllib.request.Request(server + "/api/v1/predict", data=b"x" * MB,
                                     headers={"Content-Type": "text/plain"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=60)
    assert refused.value.code == 415 and json.loads(refused.value.read())["error"] == "unsupported_media_type"


def test_hundreds_of_half_sent_requests_cannot_starve_healthz(starve):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if max(soft, hard) < 1000:
        pytest.skip(f"this test opens 400 connections; the open-file limit here is {hard}")
    # The server may open 256 files, so 400 half-sent requests would exhaust them (as 20,000
    # would with the usual limits). The header timeout is long: making room is what is tested.
    with live_server({"DIGITLAB_HEADER_TIMEOUT": "120"}, open_files=256) as base:
        held = starve.hold_half_open(base, 400)
        try:
            assert len(held) == 400
            for _ in range(5):
                began = time.monotonic()
                assert get(base + "/healthz", timeout=5)[0] == 200
                assert time.monotonic() - began < 2
            closed = sum(1 for s in held if closed_by_server(s))
            assert 400 - closed <= 256 - 64  # at most the cap is still open (files spared for the rest)
            assert_serving(base)
        finally:
            for s in held:
                s.close()


def closed_by_server(s: socket.socket) -> bool:
    s.settimeout(0.01)
    try:
        return s.recv(1) == b""
    except (TimeoutError, BlockingIOError):
        return False
    except OSError:  # reset
        return True
