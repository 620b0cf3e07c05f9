"""The HTTP layer of a real server process, over raw sockets: what uvicorn and our protocol
guard answer below the app (malformed requests, slow or oversized heads, slow bodies, HEAD)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from tests.service.helpers import live_server

pytestmark = pytest.mark.slow

LIMITS = {"DIGITLAB_HEADER_TIMEOUT": "1", "DIGITLAB_REQUEST_TIMEOUT": "2",
          "DIGITLAB_MAX_HEADER_BYTES": "4096"}


@pytest.fixture(scope="module")
def address() -> Iterator[tuple[str, int]]:
    with live_server(LIMITS) as base:
        host, port = base.split("//")[1].split(":")
        yield host, int(port)


def exchange(address: tuple[str, int], data: bytes, timeout: float = 10) -> tuple[bytes, float]:
    """Send `data`, then read until the server closes the connection: what came back, and when."""
    began = time.monotonic()
    with socket.create_connection(address, timeout=timeout) as s:
        s.sendall(data)
        received = b""
        while chunk := s.recv(65536):
            received += chunk
    return received, time.monotonic() - began


def parse(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def json_error(response: bytes, status: int, code: str) -> None:
    got, headers, body = parse(response)
    assert got == status, response[:300]
    assert headers["content-type"] == "application/json" and json.loads(body)["error"] == code


def test_a_malformed_content_length_gets_the_json_400(address):
    request = b"POST /api/v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"
    response, _ = exchange(address, request)
    json_error(response, 400, "bad_request")


def test_a_half_sent_head_gets_408_after_the_header_timeout(address):
    response, seconds = exchange(address, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    json_error(response, 408, "request_timeout")
    assert 0.9 < seconds < 5


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(address):
    response, seconds = exchange(address, b"")
    assert response == b"" and 0.9 < seconds < 5


def test_an_oversized_head_gets_431(address):
    response, _ = exchange(address, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 8000)
    json_error(response, 431, "headers_too_large")


def test_a_body_slower_than_the_budget_gets_408(address):
    head = (b"POST /api/v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            b"Content-Length: 1000\r\n\r\n")
    response, seconds = exchange(address, head + b"\x89PNG")
    json_error(response, 408, "request_timeout")
    assert 1.9 < seconds < 6


def test_a_client_that_waits_for_100_continue_gets_the_413_without_sending_its_body(address):
    head = (b"POST /api/v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            b"Content-Length: 10000000\r\nExpect: 100-continue\r\n\r\n")
    with socket.create_connection(address, timeout=10) as s:
        s.sendall(head)
        response = read_response(s)
    assert b"100 Continue" not in response
    json_error(response, 413, "payload_too_large")


def read_response(s: socket.socket) -> bytes:
    """One whole response (head, and the body its Content-Length announces) from a connection."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += s.recv(65536)
    _, headers, body = parse(received)
    while len(body) < int(headers.get("content-length", 0)):
        body += s.recv(65536)
        received = received.partition(b"\r\n\r\n")[0] + b"\r\n\r\n" + body
    return received


def test_head_sends_headers_only_and_the_connection_stays_usable(address):
    with socket.create_connection(address, timeout=10) as s:
        s.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while not received.endswith(b'{"status":"ok"}'):
            received += s.recv(65536)
    head_part, _, rest = received.partition(b"\r\n\r\n")
    assert head_part.startswith(b"HTTP/1.1 200") and b"content-length: 15" in head_part.lower()
    # No body after the HEAD answer: the next bytes are the GET's answer.
    assert rest.startswith(b"HTTP/1.1 200") and rest.endswith(b'{"status":"ok"}')
