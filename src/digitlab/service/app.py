"""The web service: a drawing page and a JSON API over one Predictor, loaded once at start-up."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.staticfiles import StaticFiles

from digitlab import __version__
from digitlab.reading.predictor import Predictor
from digitlab.service.errors import install_error_handlers
from digitlab.service.middleware import RequestLog
from digitlab.service.routes import STATIC, pages, router
from digitlab.service.settings import ServiceSettings

logger = logging.getLogger(__name__)


def create_app(settings: ServiceSettings | None = None, predictor: Predictor | None = None) -> FastAPI:
    """The service; loads `settings.model` at start-up unless a ready `predictor` is given.

    Routes get the predictor and the settings through `Depends` (service.deps): tests override
    `get_predictor` instead of loading a model.
    """
    settings = settings or ServiceSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loaded = predictor
        if loaded is None:
            loaded = await run_in_threadpool(Predictor.from_checkpoint, settings.model)
        app.state.predictor = loaded
        name = loaded.checkpoint.model_name if loaded.checkpoint else "?"
        logger.info("model %s loaded (%s)", name, settings.model or "packaged")
        yield

    app = FastAPI(title="digitlab", version=__version__, lifespan=lifespan,
                  description="Read handwritten digits and numbers from images.")
    app.state.settings = settings
    app.include_router(router)
    app.include_router(pages)
    install_error_handlers(app)
    app.add_middleware(RequestLog)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
