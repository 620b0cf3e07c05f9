"""Image work off the event loop: a bounded pool, admission with 503 + Retry-After, a time budget.

Each worker process admits at most `max_image_requests` image requests at once, counted from
their arrival (so bodies being uploaded count too: memory stays bounded) until their work is
over; one more gets 503 with Retry-After at once. Admitted requests share `image_threads`
threads. Every request has `request_timeout` seconds from its arrival: an upload still
arriving then gets 408, work not finished then gets 503 and, if it has not started, never
runs. A thread cannot be stopped, so work that has started runs to its end and keeps its
place until then: the bound holds even for requests that gave up.

Why threads: decoding (Pillow), the array work of preprocessing (numpy, scipy) and the model
(torch) release the GIL, so the event loop keeps answering (`/healthz`, uploads) while an
image is read. One thread per worker process by default: `--workers N` still uses N cores,
and images do not take turns under the GIL.

Small images are read on the event loop instead (`Ticket.run(..., inline=True)`, the routes
decide from the image's header): a drawn digit takes ~4 ms, and handing it to the thread cost
more than the hop itself, because the thread and the loop then fight for the GIL (measured
with benchmarks/load.py, 8 clients, 2 workers: ~15% fewer requests/s). A few ms on the loop
keep /healthz well under 50 ms; big images, the ones that take long, still go to the pool.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio

from digitlab.service.errors import ApiError
from digitlab.service.metrics import ServiceMetrics

T = TypeVar("T")
RETRY_AFTER = {"Retry-After": "1"}


def _call_in(loop: asyncio.AbstractEventLoop, func: Callable[..., Any], *args: Any) -> None:
    """Run `func(*args)` in the event loop's thread (the place count is the loop's alone)."""
    try:
        loop.call_soon_threadsafe(func, *args)
    except RuntimeError:  # the loop is closed: the app has stopped, nothing to count
        pass


class Expired(Exception):
    """Work that waited past its request's deadline, dropped without running."""


class ImageJobs:
    """The bounded image pool of one worker process (use from its event loop only)."""

    def __init__(self, threads: int, capacity: int, timeout: float, metrics: ServiceMetrics) -> None:
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self.capacity, self.timeout, self.metrics = capacity, timeout, metrics
        self.admitted = 0  # requests holding a place; only the event loop changes it

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[Ticket]:
        """A place for one image request, or 503 busy; 408/503 when the time budget runs out."""
        if self.admitted >= self.capacity:
            self.metrics.refused.labels("busy").inc()
            raise ApiError(503, "busy", f"this server is already handling {self.admitted} images; "
                           "try again in a moment", RETRY_AFTER)
        self.admitted += 1
        ticket = Ticket(self, time.monotonic() + self.timeout)
        budget = anyio.CancelScope(deadline=anyio.current_time() + self.timeout)
        try:
            with budget:
                yield ticket
        finally:
            ticket.leave()
        if budget.cancelled_caught:  # the budget ran out: the request was cancelled where it waited
            raise ticket.timed_out()

    @property
    def pool(self) -> ThreadPoolExecutor:
        """The threads, started on first use (and again after `close`, for an app started twice)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="digitlab-image")
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


class Ticket:
    """One admitted request: its deadline, its work, and when its place is given back."""

    def __init__(self, jobs: ImageJobs, deadline: float) -> None:
        self.jobs, self.deadline = jobs, deadline
        self.uploading = True
        self.holds = 1  # the request itself, plus its work while that is queued or running
        self.work_seconds: float | None = None

    async def run(self, endpoint: str, func: Callable[..., T], *args: Any, inline: bool = False) -> T:
        """`func(*args)` in the pool (or right here, `inline`, for quick work); its time goes to
        the image-work histogram and `work_seconds`.

        If the request stops waiting (its time is up), work still queued is dropped; work
        already running cannot be stopped and keeps the request's place until it ends.
        """
        self.uploading = False
        if inline:
            return self._timed(endpoint, func, args)
        loop = asyncio.get_running_loop()
        self.jobs.metrics.queued.inc()
        work = self.jobs.pool.submit(self._work, endpoint, func, args)
        self.holds += 1
        work.add_done_callback(lambda done: _call_in(loop, self._work_done, done))
        return await asyncio.wrap_future(work, loop=loop)  # cancelling it cancels queued work

    def _work(self, endpoint: str, func: Callable[..., T], args: tuple[Any, ...]) -> T:
        metrics = self.jobs.metrics
        metrics.queued.dec()
        if time.monotonic() > self.deadline:
            raise Expired  # its request has already been answered 503
        return self._timed(endpoint, func, args)

    def _timed(self, endpoint: str, func: Callable[..., T], args: tuple[Any, ...]) -> T:
        metrics = self.jobs.metrics
        metrics.running.inc()
        started = time.perf_counter()
        try:
            return func(*args)
        finally:
            self.work_seconds = time.perf_counter() - started
            metrics.work.labels(endpoint).observe(self.work_seconds)
            metrics.running.dec()

    def _work_done(self, work: Future[Any]) -> None:
        if work.cancelled():
            self.jobs.metrics.queued.dec()
        else:
            work.exception()  # retrieved: nothing to log for work nobody waits for
        self.leave()

    def leave(self) -> None:
        """Called by the request when it ends and by its work when that ends: the last frees the place."""
        self.holds -= 1
        if self.holds == 0:
            self.jobs.admitted -= 1

    def timed_out(self) -> ApiError:
        seconds = f"{self.jobs.timeout:g} s"
        if self.uploading:
            self.jobs.metrics.refused.labels("slow_upload").inc()
            return ApiError(408, "request_timeout", f"the upload did not arrive within {seconds}",
                            {"Connection": "close"})
        self.jobs.metrics.refused.labels("timed_out").inc()
        return ApiError(503, "timed_out", f"the image could not be read within {seconds}; the server "
                        "is busy, try again in a moment", RETRY_AFTER)
