"""Prometheus metrics (`GET /metrics`): requests, latency, image work, queue, the model served.

One registry per app, so tests can build many apps. With several worker processes
(`digitlab serve --workers N`), `serve` points PROMETHEUS_MULTIPROC_DIR at a fresh folder
before the workers start: each writes its values there and `/metrics`, whichever worker
answers it, sums them all (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# Most requests take a few ms; the large images allowed take up to a second or two.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def multiprocess_mode() -> bool:
    """Whether this process writes its metrics to PROMETHEUS_MULTIPROC_DIR (set before start)."""
    return MULTIPROCESS_ENV in os.environ


class ServiceMetrics:
    """The service's metrics, registered in their own registry."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.requests = Counter(
            "digitlab_http_requests", "HTTP requests answered, by route, method and status",
            ["route", "method", "status"], registry=registry)
        self.latency = Histogram(
            "digitlab_http_request_duration_seconds", "Arrival to response, by route",
            ["route"], buckets=LATENCY_BUCKETS, registry=registry)
        self.work = Histogram(
            "digitlab_image_work_seconds", "Decoding, preprocessing and reading one image, in the pool",
            ["endpoint"], buckets=LATENCY_BUCKETS, registry=registry)
        self.queued = Gauge(
            "digitlab_image_queue_depth", "Images waiting for a thread of the image pool",
            multiprocess_mode="livesum", registry=registry)
        self.running = Gauge(
            "digitlab_image_jobs_running", "Images being read by the image pool",
            multiprocess_mode="livesum", registry=registry)
        self.refused = Counter(
            "digitlab_image_requests_refused", "Image requests turned away: busy (503), timed_out "
            "(503), slow_upload (408)", ["reason"], registry=registry)
        self.up = Gauge(
            "digitlab_worker_up", "1 for each live server process (with several workers: one "
            "series per pid)", multiprocess_mode="liveall", registry=registry)
        # The usual "info" pattern: a gauge of 1 whose labels carry the facts (prometheus_client's
        # Info does not work in multiprocess mode).
        self.model = Gauge(
            "digitlab_model_info", "The model this server answers with (value 1)",
            ["name", "dataset", "recipe", "sha256", "digitlab_version"],
            multiprocess_mode="max", registry=registry)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def exposition(self) -> bytes:
        """The text /metrics answers: this process's metrics, or every worker's summed."""
        if not multiprocess_mode():
            return generate_latest(self.registry)
        combined = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(combined)
        return generate_latest(combined)


def forget_process(pid: int) -> None:
    """Drop a finished worker's live gauges (queue depth, running) from the shared folder."""
    if multiprocess_mode():
        prometheus_multiprocess.mark_process_dead(pid)
