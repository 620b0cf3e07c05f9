"""The web service: a drawing page and a JSON API over one Predictor, loaded once at start-up."""

from __future__ import annotations

import base64
import io
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digitlab import __version__
from digitlab.errors import ConfigError, DigitlabError
from digitlab.reading.images import MAX_PIXELS
from digitlab.reading.predictor import MIN_CONFIDENCE, Predictor
from digitlab.service.schemas import ErrorBody, Health, ModelInfo, NumberPrediction, Prediction
from digitlab.service.uploads import ApiError, decode, read_upload

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
TIMING_HEADER = "X-Process-Time-Ms"


@dataclass(frozen=True)
class ServiceSettings:
    """What `digitlab serve` serves and the limits it enforces."""

    model: str | Path | None = None  # a checkpoint path, or None for the model shipped with digitlab
    min_confidence: float = MIN_CONFIDENCE
    max_upload_bytes: int = 5 * 1024 * 1024
    max_pixels: int = MAX_PIXELS  # load_image refuses more than MAX_PIXELS whatever this says

    def __post_init__(self) -> None:
        if not 0 <= self.min_confidence <= 1:
            raise ConfigError(f"min_confidence must be in [0, 1], not {self.min_confidence}")
        if self.max_upload_bytes <= 0 or self.max_pixels <= 0:
            raise ConfigError("max_upload_bytes and max_pixels must be positive")


# Dependencies are `async def`: FastAPI runs plain `def` ones in the threadpool, a thread hop
# per dependency per request for what is an attribute lookup.
async def get_predictor(request: Request) -> Predictor:
    predictor = getattr(request.app.state, "predictor", None)
    if predictor is None:
        raise ApiError(503, "model_not_loaded", "the model is not loaded yet")
    return predictor  # type: ignore[no-any-return]


async def get_settings(request: Request) -> ServiceSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


def png_data_url(pixels: torch.Tensor) -> str:
    """A 28×28 float image in [0, 1] as a data:image/png;base64 URL."""
    array = (pixels.detach().cpu().clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# ---------------------------------------------------------------- work (runs in the threadpool)


def read_digit(predictor: Predictor, image: Image.Image, settings: ServiceSettings,
               top_k: int) -> dict[str, Any]:
    reading = predictor.read(image, top_k=top_k, min_confidence=settings.min_confidence)
    return {**reading.to_dict(), "input_png": png_data_url(reading.pixels)}


def read_number(predictor: Predictor, image: Image.Image, settings: ServiceSettings,
                top_k: int) -> dict[str, Any]:
    reading = predictor.read_number(image, settings.min_confidence, top_k=top_k)
    result = reading.to_dict()
    for described, digit in zip(result["digits"], reading.digits, strict=True):
        described["input_png"] = png_data_url(digit.pixels)
    return result


Work = Callable[[Predictor, Image.Image, ServiceSettings, int], dict[str, Any]]


def run_work(request: Request, func: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run the CPU-bound work right here on the event loop: one request at a time per process.

    Reading an image is pure CPU under the GIL. Requests run side by side in threads only take
    turns and wait longer (measured with 8 clients: ~14 ms of CPU per request instead of ~8),
    and even one at a time, the hop to a thread and back cost ~1.5 ms of a ~10 ms request on
    this 2-core VM. So each process works like a synchronous worker, and
    `digitlab serve --workers N` uses N cores. Nothing else waits long: the largest allowed
    image takes about a second.
    """
    started = time.perf_counter()
    try:
        return func(*args)
    finally:
        request.state.work_ms = 1000 * (time.perf_counter() - started)


def answer(work: Work, predictor: Predictor, data: bytes, name: str, settings: ServiceSettings,
           top_k: int) -> dict[str, Any]:
    """Decode and read; an image that decodes but breaks preprocessing is the client's 422."""
    image = decode(data, name, settings.max_pixels)
    try:
        return work(predictor, image, settings, top_k)
    except Exception as e:
        logger.exception("%s: cannot read this image", name)
        detail = str(e) if isinstance(e, DigitlabError) else f"{type(e).__name__}: {e}"
        raise ApiError(422, "unprocessable_image", f"{name}: {detail}") from None


# ---------------------------------------------------------------- routes

UPLOAD_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary", "description": "the image"}},
    }},
    **{kind: {"schema": {"type": "string", "format": "binary"}}
       for kind in ("image/png", "image/jpeg", "image/webp", "application/octet-stream")},
}}}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "empty upload, unreadable image, bad multipart"},
    413: {"model": ErrorBody, "description": "upload over the byte limit or image over the pixel limit"},
    415: {"model": ErrorBody, "description": "not an image, or an unsupported content type"},
    422: {"model": ErrorBody, "description": "invalid query parameters, or an image that cannot be read"},
}
TopK = Annotated[int, Query(ge=1, le=10, description="how many of the likeliest classes to list")]
PredictorDep = Annotated[Predictor, Depends(get_predictor)]
SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]
router = APIRouter(prefix="/api/v1")


@router.post("/predict", response_model=Prediction, responses=ERRORS, openapi_extra=UPLOAD_BODY)
async def predict(request: Request, predictor: PredictorDep, settings: SettingsDep,
                  top_k: TopK = 3) -> dict[str, Any]:
    """Read the single digit in an image (multipart field `file`, or a raw image/* body)."""
    data, name = await read_upload(request, settings.max_upload_bytes)
    return run_work(request, answer, read_digit, predictor, data, name, settings, top_k)


@router.post("/predict/number", response_model=NumberPrediction, responses=ERRORS,
             openapi_extra=UPLOAD_BODY)
async def predict_number(request: Request, predictor: PredictorDep, settings: SettingsDep,
                         top_k: TopK = 3) -> dict[str, Any]:
    """Read a number: the digits of an image left to right, each with its box."""
    data, name = await read_upload(request, settings.max_upload_bytes)
    return run_work(request, answer, read_number, predictor, data, name, settings, top_k)


@router.get("/model", response_model=ModelInfo)
def model_info(predictor: PredictorDep, settings: SettingsDep) -> ModelInfo:
    """Describe the model this server answers with."""
    checkpoint = predictor.checkpoint
    if checkpoint is None:  # the service loads checkpoints; a predictor injected by hand may not
        raise ApiError(501, "no_checkpoint", "this model was not loaded from a checkpoint")
    accuracy = checkpoint.metrics.get("accuracy")
    return ModelInfo(
        name=checkpoint.model_name, recipe=checkpoint.config.get("recipe"), dataset=predictor.dataset,
        test_accuracy=float(accuracy) if isinstance(accuracy, (int, float)) else None,
        digitlab_version=__version__, trained_with=checkpoint.digitlab_version,
        classes=list(predictor.classes), min_confidence=settings.min_confidence,
        temperature=predictor.temperature,
    )


# ---------------------------------------------------------------- errors and logging

HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
              415: "unsupported_media_type", 503: "unavailable"}


def error_response(status: int, code: str, detail: str, headers: dict[str, str] | None = None
                   ) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Every error, FastAPI's own included, as {"error": code, "detail": text}."""

    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.detail)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                             for e in exc.errors())
        return error_response(422, "invalid_request", problems or "invalid request")

    async def crash(request: Request, exc: Exception) -> JSONResponse:
        return error_response(500, "internal_error", "the server failed; the log says why")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(Exception, crash)


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
                work = scope.get("state", {}).get("work_ms")  # set by run_work
                timing = f"total;dur={elapsed:.2f}" + ("" if work is None else f", work;dur={work:.2f}")
                headers.append("Server-Timing", timing)
            await send(message)

        try:
            await self.app(scope, receive, timed)
        finally:
            elapsed = 1000 * (time.perf_counter() - start)
            logger.info("%s %s %d %.1f ms", scope["method"], scope["path"], status, elapsed)


# ---------------------------------------------------------------- the app


def create_app(settings: ServiceSettings | None = None, predictor: Predictor | None = None) -> FastAPI:
    """The service; loads `settings.model` at start-up unless a ready `predictor` is given."""
    settings = settings or ServiceSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loaded = predictor or await run_in_threadpool(Predictor.from_checkpoint, settings.model)
        app.state.predictor = loaded
        name = loaded.checkpoint.model_name if loaded.checkpoint else "?"
        logger.info("model %s loaded (%s)", name, settings.model or "packaged")
        yield

    app = FastAPI(title="digitlab", version=__version__, lifespan=lifespan,
                  description="Read handwritten digits and numbers from images.")
    app.state.settings = settings
    app.include_router(router)
    install_error_handlers(app)
    app.add_middleware(RequestLog)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/healthz", response_model=Health)
    def healthz() -> Health:
        """Say the server is up."""
        return Health()

    return app


SETTINGS_ENV = "DIGITLAB_SERVICE_SETTINGS"  # how `serve` hands its settings to worker processes


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


def app_from_environment() -> FastAPI:
    """The app a worker process builds (uvicorn factory): settings from SETTINGS_ENV."""
    import json
    import os

    fields = json.loads(os.environ.get(SETTINGS_ENV, "{}"))
    if not logging.getLogger().handlers:
        logging.basicConfig(level=fields.pop("log_level", logging.INFO), format="%(message)s")
    fields.pop("log_level", None)
    _tune_process()
    return create_app(ServiceSettings(**fields))


def serve(settings: ServiceSettings, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Load the model (a bad checkpoint raises CheckpointError here), then serve until stopped.

    With `workers` > 1, that many processes share the port, each with its own copy of the
    model (about 1 MB) loaded at its start; the model was checked here first.
    """
    import json
    import os

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
    fields = {
        "model": None if settings.model is None else str(Path(settings.model).resolve()),
        "min_confidence": settings.min_confidence, "max_upload_bytes": settings.max_upload_bytes,
        "max_pixels": settings.max_pixels, "log_level": logging.getLogger().getEffectiveLevel(),
    }
    os.environ[SETTINGS_ENV] = json.dumps(fields)
    uvicorn.run("digitlab.service.app:app_from_environment", factory=True, workers=workers,
                host=host, port=port, log_config=None, access_log=False)
