"""Every error the service answers with, as {"error": code, "detail": text}, FastAPI's own included.

Refusals are `ApiError`s (status, stable code, detail). Image errors become one by their type
(`IMAGE_ERRORS`), never by their message.
"""

from __future__ import annotations

import json

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from digitlab.errors import ImageError, ImageTooLarge, UnsupportedImage


class ApiError(Exception):
    """A request the service refuses: HTTP status, stable code, human detail (and headers,
    e.g. Retry-After on a 503)."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers


# Each kind of image error → (HTTP status, stable code); the first type in the MRO found wins.
IMAGE_ERRORS: dict[type[ImageError], tuple[int, str]] = {
    ImageTooLarge: (413, "image_too_large"),
    UnsupportedImage: (415, "not_an_image"),
    ImageError: (400, "unreadable_image"),
}


def image_error_status(error: ImageError) -> tuple[int, str]:
    """The status and code for `error`, by its type (never by its message)."""
    return next(IMAGE_ERRORS[kind] for kind in type(error).__mro__ if kind in IMAGE_ERRORS)


HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 408: "request_timeout",
              413: "payload_too_large", 415: "unsupported_media_type", 431: "headers_too_large",
              503: "unavailable"}


def error_body(code: str, detail: str) -> bytes:
    """The JSON error body, for the places that answer below the ASGI app (the HTTP protocol)."""
    return json.dumps({"error": code, "detail": detail}).encode()


def error_response(status: int, code: str, detail: str, headers: dict[str, str] | None = None
                   ) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Every error, FastAPI's own included, as {"error": code, "detail": text}."""

    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.detail, exc.headers)

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
