"""Uploads → images: the byte limit enforced while the body arrives, then a safe decode.

Bodies are read by hand rather than through FastAPI's `File()` so that a missing or lying
Content-Length cannot get past the limit, and so that multipart forms and raw `image/*`
bodies reach the same code. Every refusal is an `ApiError` with a stable code.
"""

from __future__ import annotations

from PIL import Image
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message, Scope

from digitlab.errors import ImageError
from digitlab.reading.images import load_image
from digitlab.service.errors import ApiError, image_error_status

RAW_TYPES = ("image/", "application/octet-stream")  # raw bodies we try to decode


async def read_upload(request: Request, limit: int) -> tuple[bytes, str]:
    """The uploaded image's bytes and a name for messages, or an ApiError saying why not."""
    too_large = ApiError(413, "payload_too_large", f"uploads are limited to {limit:,} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    multipart = kind == "multipart/form-data"
    if kind and not multipart and not kind.startswith(RAW_TYPES):
        raise _unsupported(kind)
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise too_large
    except ClientDisconnect:
        # nginx's 499: the client left before its upload was whole. Nobody sees the answer;
        # the request log and /metrics count it apart from the server's own failures.
        raise ApiError(499, "client_closed_request", f"the client left after {len(body):,} bytes "
                       "of its upload") from None
    if not body:
        raise ApiError(400, "empty_upload", "the request has no image in it")
    if not kind:
        raise _unsupported("no content type")
    if multipart:
        return await _form_file(request.scope, bytes(body))
    return bytes(body), "upload"


def _unsupported(kind: str) -> ApiError:
    return ApiError(415, "unsupported_media_type", f"cannot take {kind}: send multipart/form-data "
                    "with the image in field 'file', or the image itself with an image/* content type")


async def _form_file(scope: Scope, body: bytes) -> tuple[bytes, str]:
    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(dict(scope), receive).form(max_files=1, max_fields=10)
    except Exception as e:  # python-multipart and Starlette raise several types; all mean bad input
        raise ApiError(400, "invalid_multipart", f"the multipart body cannot be parsed ({e})") from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiError(400, "missing_file", "the multipart form has no file in field 'file'")
        data = await upload.read()
    finally:
        await form.close()
    if not data:
        raise ApiError(400, "empty_upload", "the uploaded file is empty")
    return data, upload.filename or "upload"


def decode(data: bytes, name: str, max_pixels: int, max_decoded_bytes: int) -> Image.Image:
    """Bytes → image; pixel count and decoded size checked from the header before anything
    is decoded (big JPEGs are decoded reduced first: reading.images.load_image)."""
    try:
        return load_image(data, name=name, max_pixels=max_pixels, max_decoded_bytes=max_decoded_bytes)
    except ImageError as e:
        status, code = image_error_status(e)
        raise ApiError(status, code, str(e)) from None
