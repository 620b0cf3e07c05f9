"""Request logging and timing headers, as plain ASGI middleware."""

from __future__ import annotations

import logging
import time

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

TIMING_HEADER = "X-Process-Time-Ms"


class RequestLog:
    """One log line per request (method, path, status, ms) and the times in response headers.

    X-Process-Time-Ms: from the request's arrival at the app to its response headers.
    Server-Timing (the W3C header browsers show): that total, and the image work alone.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

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
                work = scope.get("state", {}).get("work_ms")  # set by routes.run_work
                timing = f"total;dur={elapsed:.2f}" + ("" if work is None else f", work;dur={work:.2f}")
                headers.append("Server-Timing", timing)
            await send(message)

        try:
            await self.app(scope, receive, timed)
        finally:
            elapsed = 1000 * (time.perf_counter() - start)
            logger.info("%s %s %d %.1f ms", scope["method"], scope["path"], status, elapsed)
