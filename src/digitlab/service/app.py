"""The web service: a drawing page and a JSON API over one Predictor, loaded once at start-up."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from digitlab import __version__
from digitlab.checkpoints.integrity import weights_digest
from digitlab.predicting.line_reader import SHIPPED as SHIPPED_LINE_READER
from digitlab.predicting.predictor import Predictor
from digitlab.service.errors import install_error_handlers
from digitlab.service.jobs import ImageJobs
from digitlab.service.metrics import ServiceMetrics, forget_process
from digitlab.service.middleware import (
    CSP_HEADER,
    HeadAsGet,
    ReadBodyFirst,
    RequestLog,
    SecurityHeaders,
)
from digitlab.service.protocol import LIMITS_KEY, ConnectionLimits, connection_cap
from digitlab.service.routes import STATIC, pages, router
from digitlab.service.settings import ServiceSettings

logger = logging.getLogger(__name__)

DOCS_ASSETS = "/docs/assets"


def create_app(settings: ServiceSettings | None = None, predictor: Predictor | None = None) -> FastAPI:
    """The service; loads `settings.model` at start-up unless a ready `predictor` is given.

    Routes get the predictor, the settings and the image pool through `Depends`
    (service.deps): tests override `get_predictor` instead of loading a model.
    """
    settings = settings or ServiceSettings()
    metrics = ServiceMetrics()
    jobs = ImageJobs(settings.image_threads, settings.max_image_requests, settings.request_timeout,
                     metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Mapping[str, object]]:
        loaded = predictor
        if loaded is None:
            loaded = await run_in_threadpool(Predictor.load, settings.model)
        if settings.line_model is not None:
            await run_in_threadpool(loaded.use_line_reader, settings.line_model)
        elif loaded.reads_digits and SHIPPED_LINE_READER.is_file():
            await run_in_threadpool(lambda: loaded.line_reader)  # loaded now, not on the first number
        app.state.predictor = loaded
        labels = await run_in_threadpool(model_labels, loaded)
        metrics.model.labels(**labels).set(1)
        metrics.up.set(1)
        logger.info("model %s loaded (%s)", labels["name"], settings.model or "packaged")
        limits = ConnectionLimits(settings.header_timeout, settings.max_header_bytes,
                                  connection_cap(settings.max_connections))
        try:
            yield {LIMITS_KEY: limits}  # lifespan state: uvicorn hands it to the HTTP protocol
        finally:
            jobs.close()
            forget_process(os.getpid())

    # /redoc is off: ReDoc is not packaged for Python, and it would load from a CDN.
    app = FastAPI(title="digitlab", version=__version__, lifespan=lifespan, docs_url=None,
                  redoc_url=None, description="Read handwritten digits and numbers from images.")
    app.state.settings, app.state.metrics, app.state.jobs = settings, metrics, jobs
    app.include_router(router)
    app.include_router(pages)
    install_error_handlers(app)
    # Outermost last: the log sees every answer, HEAD included, bodies are read before one.
    app.add_middleware(ReadBodyFirst, max_bytes=settings.max_discard_bytes, timeout=settings.request_timeout)
    app.add_middleware(HeadAsGet)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestLog, metrics=metrics)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        """Swagger UI, from the swagger-ui-bundle package: nothing comes from a CDN."""
        return with_script_hashes(get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title="digitlab API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},  # the validator badge calls swagger.io
        ))

    return app


def with_script_hashes(page: HTMLResponse) -> HTMLResponse:
    """`page` with a Content-Security-Policy that allows its own inline scripts by their sha256
    (Swagger UI starts from one) and nothing else inline; Swagger UI sets inline styles."""
    body = bytes(page.body).decode()
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in re.findall(r"<script>(.*?)</script>", body, flags=re.S))
    page.headers[CSP_HEADER] = (f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' "
                                "'unsafe-inline'; img-src 'self' data:; object-src 'none'; "
                                "base-uri 'none'; frame-ancestors 'none'")
    return page


def model_labels(predictor: Predictor) -> dict[str, str]:
    """What /metrics says about the model: its name, data set, recipe, weights digest, version."""
    checkpoint = predictor.checkpoint
    # The checkpoint's own digest (checkpoints.integrity), the one written in its file.
    digest = weights_digest(checkpoint.state_dict) if checkpoint else ""
    return {"name": checkpoint.model_name if checkpoint else "?", "dataset": predictor.dataset,
            "recipe": str(checkpoint.config.get("recipe", "")) if checkpoint else "",
            "sha256": digest, "digitlab_version": checkpoint.digitlab_version if checkpoint else ""}

