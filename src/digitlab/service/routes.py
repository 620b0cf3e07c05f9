"""The endpoints: read a digit, read a number, describe the model; the page, liveness
(/healthz), readiness (/readyz) and the metrics (/metrics)."""

from __future__ import annotations

import base64
import io
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from PIL import Image

from digitlab import __version__
from digitlab.errors import DigitlabError, ModelOutputNotFinite
from digitlab.predicting.predictor import Predictor
from digitlab.reading.images import header_pixels
from digitlab.service.deps import JobsDep, PredictorDep, SettingsDep
from digitlab.service.errors import ApiError
from digitlab.service.jobs import ImageJobs
from digitlab.service.metrics import CONTENT_TYPE
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


def answer(work: Work, predictor: Predictor, data: bytes, name: str, settings: ServiceSettings,
           top_k: int) -> dict[str, Any]:
    """Decode and read (in the image pool); an image that decodes but breaks preprocessing is
    the client's 422, a model whose answer is not finite is the server's 500."""
    image = decode(data, name, settings.max_pixels, settings.max_decoded_bytes)
    try:
        result = work(predictor, image, settings, top_k)
    except ModelOutputNotFinite:
        logger.error("%s: the model answered NaN or infinity", name)
        raise NOT_FINITE from None
    except Exception as e:
        if not model_answers_finite(predictor):  # e.g. segmentation tripping over NaN scores
            raise NOT_FINITE from None
        logger.exception("%s: cannot read this image", name)
        detail = str(e) if isinstance(e, DigitlabError) else f"{type(e).__name__}: {e}"
        raise ApiError(422, "unprocessable_image", f"{name}: {detail}") from None
    if not all(math.isfinite(value) for value in numbers_in(result)):
        logger.error("%s: the model answered NaN or infinity", name)
        raise NOT_FINITE
    return result


NOT_FINITE = ApiError(500, "model_output_not_finite", "the model's probabilities are not finite "
                      "numbers (NaN or infinity): the model served is broken; no answer is given")


def model_answers_finite(predictor: Predictor) -> bool:
    """Whether the model's probabilities for a blank and a full 28×28 image are finite numbers
    (True when it cannot tell: the question is only whether NaN is to blame)."""
    try:  # predict checks its own outputs (checkpoints.integrity.check_finite_outputs)
        predictor.predict(torch.stack([torch.zeros(28, 28), torch.ones(28, 28)]))
    except ModelOutputNotFinite:
        return False
    except Exception:  # noqa: BLE001 - a model that cannot even run says so in its own error
        return True
    return True


def numbers_in(result: dict[str, Any]) -> list[float]:
    """The confidences and probabilities of a reading's JSON (a digit's, or each of a number's)."""
    readings = result.get("digits", [result])
    return [result["confidence"]] + [value for reading in readings
                                     for value in [reading["confidence"], *reading.get("probabilities", ())]]


async def read_image(request: Request, jobs: ImageJobs, endpoint: str, work: Work,
                     predictor: Predictor, settings: ServiceSettings, top_k: int) -> dict[str, Any]:
    """Admit the request (or 503), take its upload, read it in the image pool, within the budget."""
    async with jobs.admit() as ticket:
        data, name = await read_upload(request, settings.max_upload_bytes)
        pixels = header_pixels(data)  # a small image is read on the loop (service.jobs says why)
        inline = pixels is not None and pixels <= settings.inline_pixels
        try:
            return await ticket.run(endpoint, answer, work, predictor, data, name, settings, top_k,
                                    inline=inline)
        finally:
            if ticket.work_seconds is not None:
                request.state.work_ms = 1000 * ticket.work_seconds


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
    408: {"model": ErrorBody, "description": "the upload did not arrive within the time budget"},
    400: {"model": ErrorBody, "description": "empty upload, unreadable image, bad multipart"},
    413: {"model": ErrorBody, "description": "upload over the byte limit or image over the pixel limit"},
    415: {"model": ErrorBody, "description": "not an image, or an unsupported content type"},
    422: {"model": ErrorBody, "description": "invalid query parameters, or an image that cannot be read"},
    500: {"model": ErrorBody, "description": "the model answered NaN or infinity (model_output_not_finite)"},
    503: {"model": ErrorBody, "description": "busy or timed out: try again after Retry-After seconds"},
}
TopK = Annotated[int, Query(ge=1, le=10, description="how many of the likeliest classes to list")]
router = APIRouter(prefix="/api/v1")
pages = APIRouter()


@router.post("/predict", response_model=Prediction, responses=ERRORS, openapi_extra=UPLOAD_BODY)
async def predict(request: Request, predictor: PredictorDep, settings: SettingsDep, jobs: JobsDep,
                  top_k: TopK = 3) -> dict[str, Any]:
    """Read the single digit in an image (multipart field `file`, or a raw image/* body)."""
    return await read_image(request, jobs, "predict", read_digit, predictor, settings, top_k)


@router.post("/predict/number", response_model=NumberPrediction, responses=ERRORS,
             openapi_extra=UPLOAD_BODY)
async def predict_number(request: Request, predictor: PredictorDep, settings: SettingsDep,
                         jobs: JobsDep, top_k: TopK = 3) -> dict[str, Any]:
    """Read a number: the digits of an image left to right, each with its box."""
    return await read_image(request, jobs, "predict_number", read_number, predictor, settings, top_k)


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


# /healthz and /readyz are `async def`: answered on the event loop, never queued behind the
# thread pool that FastAPI runs plain `def` endpoints in.
@pages.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """Liveness: the process is up and its event loop answers."""
    return Health()


@pages.get("/readyz", response_model=Health, responses={503: {"model": ErrorBody,
                                                              "description": "the model is not loaded yet"}})
async def readyz(request: Request) -> Health:
    """Readiness: the model is loaded and requests can be served (503 until then)."""
    if getattr(request.app.state, "predictor", None) is None:
        raise ApiError(503, "model_not_loaded", "the model is not loaded yet")
    return Health()


@pages.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus metrics: every worker's, summed."""
    body = await run_in_threadpool(request.app.state.metrics.exposition)  # reads files with workers
    return Response(body, media_type=CONTENT_TYPE)
