"""uvicorn's HTTP protocol with the connection limits it lacks: a deadline for request heads,
a cap on their size, room made for new connections, and JSON for its own 400.

uvicorn times out idle keep-alive connections but not a connection that has sent part of a
request head (or nothing at all), and its `limit_concurrency` counts such connections, so
20,000 half-sent requests hold 20,000 file descriptors and either exhaust them or turn every
new client away with 503, `/healthz` included. Here (as nginx's `client_header_timeout` and
`large_client_header_buffers` do), a connection gets `header_timeout` seconds and
`max_header_bytes` for each request head, then 408 or 431; and past `max_connections` open
connections, the one that has waited longest for a head (half-sent or idle) is closed, so a
client that sends a whole request always finds room. `limit_concurrency` stays as the last
resort, for when every connection is busy with a real request.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
import weakref
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from digitlab.service.errors import error_body

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is in the `serve` extra; without it uvicorn uses h11
    HttpToolsProtocol = None  # type: ignore[assignment, misc]

logger = logging.getLogger(__name__)

REASONS = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


LIMITS_KEY = "digitlab.connection_limits"  # where the app's lifespan state holds them
SPARE_FILES = 64  # file descriptors kept for the model, logs, metrics files and the like


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float
    max_header_bytes: int
    max_connections: int


def connection_cap(wanted: int) -> int:
    """`wanted` connections, or fewer if the process may not open that many files.

    The soft limit on open files is raised to the hard one first (as nginx's
    worker_rlimit_nofile does): each connection is a file descriptor.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - SPARE_FILES))


# Per server (uvicorn's ServerState), the connections waiting for a request head, oldest first.
_WAITING: weakref.WeakKeyDictionary[Any, dict[Any, None]] = weakref.WeakKeyDictionary()


class ConnectionGuard:
    """Mixed into uvicorn's protocol classes (below).

    The limits come from the app's lifespan state (create_app puts them there from its
    settings), which uvicorn hands every protocol it makes: so the class can be named to
    uvicorn by an import string, and worker processes, which import it, get their own app's.
    Without them (another app), the protocol is uvicorn's own.
    """

    # What the uvicorn protocol class this is mixed into provides:
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    connections: set[Any]
    server_state: Any
    app_state: dict[str, Any]
    cycle: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits: ConnectionLimits | None = self.app_state.get(LIMITS_KEY)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._waiting = _WAITING.setdefault(self.server_state, {})

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        if self.limits is None:
            return
        self._await_head()
        if len(self.connections) > self.limits.max_connections:
            self._make_room()

    def data_received(self, data: bytes) -> None:
        if self not in self._waiting:
            super().data_received(data)  # type: ignore[misc]
            return
        # Counted before the parser sees the bytes: a head that arrives whole in one piece
        # is held to the limit too (only its part up to the blank line; a body may follow).
        end = data.find(b"\r\n\r\n")
        self._head_bytes += len(data) if end < 0 else end + 4
        if self.limits is not None and self._head_bytes > self.limits.max_header_bytes:
            self._refuse(431, "headers_too_large",
                         f"the request head is over {self.limits.max_header_bytes:,} bytes")
            return
        before = self.cycle
        super().data_received(data)  # type: ignore[misc]
        if self.cycle is not before or self.transport.is_closing():
            self._stop_waiting()  # a whole head arrived (or the connection is over)

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        idle = self.cycle is None or self.cycle.response_complete  # no pipelined request started
        if self.limits is not None and idle and not self.transport.is_closing():
            self._await_head()  # keep-alive: the next request's head gets the same deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)  # type: ignore[misc]

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a malformed request (e.g. Content-Length: abc), as JSON."""
        self._refuse(400, "bad_request", msg)

    def _await_head(self) -> None:
        assert self.limits is not None
        self._stop_waiting()
        self._head_bytes = 0
        self._waiting[self] = None
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)

    def _stop_waiting(self) -> None:
        self._waiting.pop(self, None)
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        assert self.limits is not None
        if self._head_bytes:
            self._refuse(408, "request_timeout", f"the request head did not arrive within "
                         f"{self.limits.header_timeout:g} s")
        else:  # idle: nothing to answer, as with uvicorn's own keep-alive timeout
            self._stop_waiting()
            self.transport.close()

    def _make_room(self) -> None:
        """Close the connection that has waited longest for a request head (not this one)."""
        assert self.limits is not None
        oldest = next((c for c in self._waiting if c is not self), None)
        if oldest is None:
            return  # every other connection is busy: limit_concurrency answers 503
        oldest._stop_waiting()
        oldest.transport.close()
        # Not counted from now on (uvicorn forgets it only when the close completes): the
        # request that made room must not find limit_concurrency still reached.
        self.connections.discard(oldest)
        _warn_now_and_then("over %d connections: closing those idle or half-sent longest",
                           self.limits.max_connections)

    def _refuse(self, status: int, code: str, detail: str) -> None:
        self._stop_waiting()
        if self.transport.is_closing():
            return
        body = error_body(code, detail)
        head = (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                b"connection: close\r\n\r\n" % (status, REASONS[status], len(body)))
        self.transport.write(head + body)
        self.transport.close()


_last_warning = [0.0]


def _warn_now_and_then(message: str, *args: Any) -> None:
    """At most one warning every 10 s: a flood of connections must not become a flood of logs."""
    if time.monotonic() - _last_warning[0] > 10:
        _last_warning[0] = time.monotonic()
        logger.warning(message, *args)


class GuardedH11Protocol(ConnectionGuard, H11Protocol):
    """uvicorn's h11 protocol with the limits above."""


if HttpToolsProtocol is not None:

    class GuardedHttpToolsProtocol(ConnectionGuard, HttpToolsProtocol):
        """uvicorn's httptools protocol (its fastest) with the limits above."""

    PROTOCOL = f"{__name__}:GuardedHttpToolsProtocol"  # for uvicorn's `http=`
else:
    PROTOCOL = f"{__name__}:GuardedH11Protocol"
