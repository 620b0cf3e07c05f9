"""Plain ASGI middleware: the request log and its metrics, HEAD for every GET, and bodies
read to their end before an early answer, so that every client sees it.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit, urlunsplit

import anyio
from starlette.datastructures import Headers, MutableHeaders
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digitlab.service.metrics import ServiceMetrics

logger = logging.getLogger(__name__)

TIMING_HEADER = "X-Process-Time-Ms"


class RequestLog:
    """One log line per request (method, path, status, ms), its count and latency in the
    metrics, and the times in response headers.

    X-Process-Time-Ms: from the request's arrival at the app to its response headers.
    Server-Timing (the W3C header browsers show): that total, and the image work alone.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def timed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                elapsed = 1000 * (time.perf_counter() - start)
                headers = MutableHeaders(scope=message)
                headers.append(TIMING_HEADER, f"{elapsed:.2f}")
                work = scope.get("state", {}).get("work_ms")  # set by routes.read_image
                timing = f"total;dur={elapsed:.2f}" + ("" if work is None else f", work;dur={work:.2f}")
                headers.append("Server-Timing", timing)
            await send(message)

        try:
            await self.app(scope, receive, timed)
        finally:
            elapsed = time.perf_counter() - start
            self.metrics.observe_request(route_label(scope), scope["method"], status, elapsed)
            logger.info("%s %s %d %.1f ms", scope["method"], scope["path"], status, 1000 * elapsed)


def route_label(scope: Scope) -> str:
    """One metrics label per route, never per URL: the matched route's path (the router sets
    scope["route"]), the mount's path for static files (/static, whatever the file), else
    "unmatched"."""
    route = scope.get("route")
    if route is not None:
        return str(route.path)
    path = scope["path"]
    for mount in getattr(scope.get("app"), "routes", ()):  # Starlette sets scope["app"]
        if isinstance(mount, Mount) and (path == mount.path or path.startswith(mount.path + "/")):
            return mount.path
    return "unmatched"


# Everything the page needs comes from this server: its script and style files, images it makes
# itself (data: and blob: URLs) and the API. No inline script, no eval, no frames, no plugins:
# a class name from a checkpoint that slipped into markup still could not run.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
CSP_HEADER = "Content-Security-Policy"


class SecurityHeaders:
    """A strict Content-Security-Policy and `nosniff` on every answer (a route that sets its
    own policy, like /docs, keeps it), and redirects made relative.

    Starlette builds a redirect's Location (e.g. /static -> /static/) from the request's Host
    header, which the client chooses: `Host: evil.example` would send the browser there. A
    Location of this server's own making keeps only its path and query.
    """

    HEADERS = [(CSP_HEADER.lower().encode(), CONTENT_SECURITY_POLICY.encode()),
               (b"x-content-type-options", b"nosniff")]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = list(message.get("headers", ()))
                # raw headers, not MutableHeaders: this runs for every answer, so it stays cheap
                if not any(name.lower() == self.HEADERS[0][0] for name, _ in raw):
                    raw += self.HEADERS
                if 300 <= message["status"] < 400:
                    raw = [(name, relative_location(value.decode("latin-1")).encode("latin-1"))
                           if name.lower() == b"location" else (name, value) for name, value in raw]
                message = {**message, "headers": raw}
            await send(message)

        await self.app(scope, receive, secured)


def relative_location(location: str) -> str:
    """`location` without scheme and host: path, query and fragment only ("/" if no path)."""
    parts = urlsplit(location)
    path = "/" + parts.path.lstrip("/")  # never "//host": a scheme-relative URL leaves the site
    return urlunsplit(("", "", path, parts.query, parts.fragment))


class HeadAsGet:
    """HEAD is answered as GET without the body, for every route (as Starlette's own routes
    and static files do; FastAPI's routes allow only the methods they declare)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        # A copy: the server still sees HEAD in its own scope, and sends no body either.
        inner = {**scope, "method": "GET"}

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        try:
            await self.app(inner, receive, headers_only)
        finally:
            if "route" in inner:
                scope["route"] = inner["route"]  # for RequestLog's metrics


class ReadBodyFirst:
    """Before an answer goes out, read and drop what is left of the request's body (up to
    `max_bytes`, for up to `timeout` seconds), as nginx does.

    Clients that send a whole body before reading the answer (Python's urllib, and any that
    sends `Connection: close`) would otherwise get a connection reset instead of, say, the 413:
    closing a socket with unread data makes the kernel send RST. Not done when the client waits
    for `100 Continue` (it has sent no body), nor when the answer closes the connection anyway.
    A body longer than the bound gets the answer with `Connection: close`.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float) -> None:
        self.app, self.max_bytes, self.timeout = app, max_bytes, timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope) if scope["type"] == "http" else None
        if headers is None or not (headers.get("content-length", "0") != "0"
                                   or "transfer-encoding" in headers):
            await self.app(scope, receive, send)
            return
        waits_for_continue = headers.get("expect", "").lower() == "100-continue"
        state = {"received": False, "done": False}

        async def tracked() -> Message:
            message = await receive()
            state["received"] = True
            state["done"] = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        async def drained_first(message: Message) -> None:
            if message["type"] == "http.response.start" and not state["done"]:
                closing = "close" in Headers(raw=message.get("headers", [])).get("connection", "").lower()
                if not closing and (state["received"] or not waits_for_continue):
                    if not await self._drain(receive):
                        MutableHeaders(scope=message).append("Connection", "close")
            await send(message)

        await self.app(scope, tracked, drained_first)

    async def _drain(self, receive: Receive) -> bool:
        """Read and drop the rest of the body; False when it is longer than allowed or too slow."""
        dropped = 0
        with anyio.move_on_after(self.timeout):
            while dropped <= self.max_bytes:
                message = await receive()
                if message["type"] != "http.request":
                    return True  # the client left
                dropped += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return True
        return False
