"""`digitlab serve`: uvicorn, in one process or several workers, each tuned for small requests.

Workers are separate processes that build their app from the environment: `serve` hands them
its settings whole (every field of ServiceSettings, as JSON), so a new setting reaches them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path

import torch
from fastapi import FastAPI

from digitlab import __version__
from digitlab.errors import ConfigError
from digitlab.reading.predictor import Predictor
from digitlab.service.app import create_app
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


def settings_to_environment(settings: ServiceSettings) -> str:
    """The JSON a worker rebuilds `settings` from: every field, the model path made absolute,
    and this process's log level."""
    model = None if settings.model is None else str(Path(settings.model).resolve())
    fields = dataclasses.asdict(dataclasses.replace(settings, model=model))
    return json.dumps({"settings": fields, "log_level": logging.getLogger().getEffectiveLevel()},
                      default=str)


def app_from_environment() -> FastAPI:
    """The app a worker process builds (uvicorn factory): settings from SETTINGS_ENV."""
    handed = json.loads(os.environ.get(SETTINGS_ENV, "{}"))
    if not logging.getLogger().handlers:
        logging.basicConfig(level=handed.get("log_level", logging.INFO), format="%(message)s")
    _tune_process()
    return create_app(ServiceSettings(**handed.get("settings", {})))


def serve(settings: ServiceSettings, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Load the model (a bad checkpoint raises CheckpointError here), then serve until stopped.

    With `workers` > 1, that many processes share the port, each with its own copy of the
    model (about 1 MB) loaded at its start; the model was checked here first.
    """
    import uvicorn

    if workers < 1:
        raise ConfigError(f"workers must be at least 1, not {workers}")
    predictor = Predictor.from_checkpoint(settings.model)
    logger.info("digitlab %s: open http://%s:%d/ (%d worker%s)", __version__, host, port, workers,
                "s" if workers > 1 else "")
    # log_config=None keeps the CLI's logging; RequestLog replaces uvicorn's access log.
    if workers == 1:
        _tune_process()
        uvicorn.run(create_app(settings, predictor), host=host, port=port, log_config=None,
                    access_log=False)
        return
    os.environ[SETTINGS_ENV] = settings_to_environment(settings)
    uvicorn.run(WORKER_FACTORY, factory=True, workers=workers, host=host, port=port,
                log_config=None, access_log=False)
