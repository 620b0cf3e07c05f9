"""`digitlab serve`: uvicorn, in one process or several workers, each tuned for small requests
and given the connection limits of service.protocol.

Workers are separate processes that build their app from the environment: `serve` hands them
its settings whole (every field of ServiceSettings, as JSON), so a new setting reaches them,
and a fresh folder for their metrics (PROMETHEUS_MULTIPROC_DIR), so /metrics sums them all.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from fastapi import FastAPI

from digitlab import __version__
from digitlab.errors import CheckpointError
from digitlab.predicting.predictor import Predictor
from digitlab.processes import exit_with_parent
from digitlab.service.app import create_app
from digitlab.service.metrics import MULTIPROCESS_ENV
from digitlab.service.protocol import PROTOCOL, connection_cap
from digitlab.service.routes import model_answers_finite
from digitlab.service.settings import ServiceSettings

logger = logging.getLogger(__name__)

SETTINGS_ENV = "DIGITLAB_SERVICE_SETTINGS"  # how `serve` hands its settings to worker processes
WORKER_FACTORY = "digitlab.service.server:app_from_environment"


def _tune_process() -> None:
    """One intra-op thread per process, and an allocator that keeps its freed pages.

    Requests run concurrently, each on one small image: more threads would only fight for
    the cores. Preprocessing allocates and frees arrays of a few hundred kB per request;
    glibc would return each to the kernel and fault it back in on the next request
    (measured: 25% of preprocessing time on this VM), so raise its mmap/trim thresholds.
    """
    torch.set_num_threads(1)
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 * 1024 * 1024)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 128 * 1024 * 1024)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


def uvicorn_options(settings: ServiceSettings) -> dict[str, Any]:
    """uvicorn's settings: address, the guarded protocol and its limits, uvicorn's own limits."""
    max_connections = connection_cap(settings.max_connections)
    return {
        "host": settings.host, "port": settings.port,
        # log_config=None keeps the CLI's logging; RequestLog replaces uvicorn's access log.
        "log_config": None, "access_log": False,
        # Named, not passed: worker processes import it after they start (a class would be
        # pickled, and unpickling it would import torch before the worker answers uvicorn's
        # health check). It reads its limits from the app (create_app).
        "http": PROTOCOL,
        # The guard keeps connections under max_connections while some are idle or half-sent;
        # uvicorn's 503 is for when every one is busy with a real request.
        "limit_concurrency": max_connections + 1,
        "timeout_keep_alive": settings.keep_alive_timeout,
        "backlog": settings.backlog,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
    }


def settings_to_environment(settings: ServiceSettings) -> str:
    """The JSON a worker rebuilds `settings` from: every field, the model path made absolute,
    this process's log level and pid (its workers stop when it does)."""
    model = None if settings.model is None else str(Path(settings.model).resolve())
    fields = settings.model_copy(update={"model": model}).model_dump(mode="json")
    return json.dumps({"settings": fields, "log_level": logging.getLogger().getEffectiveLevel(),
                       "parent": os.getpid()})


def app_from_environment() -> FastAPI:
    """The app a worker process builds (uvicorn factory): settings from SETTINGS_ENV."""
    handed = json.loads(os.environ.get(SETTINGS_ENV, "{}"))
    if "parent" in handed:  # killed, even by SIGKILL, `serve` takes its workers (and port) along
        exit_with_parent(int(handed["parent"]))
    if not logging.getLogger().handlers:
        logging.basicConfig(level=handed.get("log_level", logging.INFO), format="%(message)s")
    _tune_process()
    return create_app(ServiceSettings(**handed.get("settings", {})))


@contextmanager
def shared_metrics_folder(workers: int) -> Iterator[str | None]:
    """A folder for the workers' metrics in PROMETHEUS_MULTIPROC_DIR while they run.

    One the operator set is used, emptied first (prometheus_client's rule: old values would be
    summed in); otherwise, for several workers, a temporary one is made and removed afterwards.
    """
    given = os.environ.get(MULTIPROCESS_ENV)
    if given or workers == 1:
        for stale in Path(given).glob("*.db") if given else ():
            stale.unlink()
        yield given
        return
    folder = tempfile.mkdtemp(prefix="digitlab-metrics-")
    os.environ[MULTIPROCESS_ENV] = folder
    try:
        yield folder
    finally:
        os.environ.pop(MULTIPROCESS_ENV, None)
        shutil.rmtree(folder, ignore_errors=True)


def serve(settings: ServiceSettings) -> None:
    """Load the model (a bad checkpoint, or one that answers NaN, raises CheckpointError here),
    then serve until stopped.

    With `settings.workers` > 1, that many processes share the port, each with its own copy
    of the model (about 1 MB) loaded at its start; the model was checked here first.
    """
    import uvicorn

    predictor = Predictor.from_checkpoint(settings.model)
    if not model_answers_finite(predictor):
        raise CheckpointError(f"{settings.model or 'the packaged model'}: the model answers NaN or "
                              "infinity: its weights are broken (retrain it, or pick another checkpoint)")
    workers = settings.workers
    logger.info("digitlab %s: open http://%s:%d/ (%d worker%s)", __version__, settings.host,
                settings.port, workers, "s" if workers > 1 else "")
    options = uvicorn_options(settings)
    with shared_metrics_folder(workers):
        if workers == 1:
            _tune_process()
            uvicorn.run(create_app(settings, predictor), **options)
            return
        os.environ[SETTINGS_ENV] = settings_to_environment(settings)
        uvicorn.run(WORKER_FACTORY, factory=True, workers=workers, **options)
