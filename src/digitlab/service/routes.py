"""The endpoints: read a digit, read a number, describe the model; the page and the health check."""

from __future__ import annotations

import base64
import io
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse
from PIL import Image

from digitlab import __version__
from digitlab.errors import DigitlabError
from digitlab.reading.predictor import Predictor
from digitlab.service.deps import PredictorDep, SettingsDep
from digitlab.service.errors import ApiError
from digitlab.service.schemas import ErrorBody, Health, ModelInfo, NumberPrediction, Prediction
from digitlab.service.settings import ServiceSettings
from digitlab.service.uploads import decode, read_upload

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"


def png_data_url(pixels: torch.Tensor) -> str:
    """A 28×28 float image in [0, 1] as a data:image/png;base64 URL."""
    array = (pixels.detach().cpu().clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# ---------------------------------------------------------------- work (CPU-bound)


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
router = APIRouter(prefix="/api/v1")
pages = APIRouter()


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


@pages.get("/", include_in_schema=False)
def page() -> FileResponse:
    return FileResponse(STATIC / "index.html")


@pages.get("/healthz", response_model=Health)
def healthz() -> Health:
    """Say the server is up."""
    return Health()
