"""What `digitlab serve` serves, where, and the limits it enforces: one frozen settings object.

Each field is read from the environment as DIGITLAB_<NAME> (DIGITLAB_MODEL, DIGITLAB_PORT,
DIGITLAB_MAX_UPLOAD_BYTES, ...); values given in code or by `digitlab serve` flags override it.
Limits that count per process count per worker: `--workers 2` serves twice as many.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from digitlab.errors import ConfigError
from digitlab.predicting.predictor import MIN_CONFIDENCE
from digitlab.reading.images import MAX_PIXELS

ENV_PREFIX = "DIGITLAB_"
MB = 1024 * 1024


class ServiceSettings(BaseSettings):
    """What `digitlab serve` serves, where, and the limits it enforces."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    model: str | Path | None = Field(None, description="a checkpoint path; unset: the model shipped "
                                     "with digitlab")
    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8000, ge=1, le=65535, description="port to listen on")
    workers: int = Field(1, ge=1, description="server processes, each with its own model copy")
    min_confidence: float = Field(MIN_CONFIDENCE, ge=0, le=1,
                                  description="below this the answer is 'no digit'")
    max_upload_bytes: int = Field(5 * MB, gt=0, description="larger uploads get 413")
    max_pixels: int = Field(MAX_PIXELS, gt=0, description="larger images get 413 (from their header; "
                            f"never more than {MAX_PIXELS:,})")
    max_decoded_bytes: int = Field(64 * MB, gt=0, description="images whose pixels would take more "
                                   "memory than this once decoded get 413 (from their header)")
    image_threads: int = Field(1, ge=1, description="threads per worker that decode and read images")
    inline_pixels: int = Field(250_000, ge=0, description="images of at most this many pixels (from "
                               "their header) are read on the event loop, a few ms each, without "
                               "the hop to the image threads; 0: every image goes to the threads")
    max_image_requests: int = Field(16, ge=1, description="image requests per worker at once "
                                    "(arriving, waiting or being read); more get 503 + Retry-After")
    request_timeout: float = Field(10.0, gt=0, description="seconds an image request may take from "
                                   "arrival to answer: 408 for a slow upload, 503 for slow work")
    header_timeout: float = Field(10.0, gt=0, description="seconds a connection may take to send a "
                                  "request's headers before it is closed")
    keep_alive_timeout: int = Field(5, ge=1, description="seconds an idle keep-alive connection stays open")
    max_connections: int = Field(1000, ge=1, description="open connections per worker; past it the "
                                 "oldest idle or half-sent one is closed")
    max_header_bytes: int = Field(32 * 1024, ge=1024, description="a request head (line and headers) "
                                  "larger than this gets 431")
    max_discard_bytes: int = Field(64 * MB, ge=0, description="how much of a refused request's body "
                                   "is read and dropped so that any client sees the error")
    backlog: int = Field(2048, ge=1, description="connections the kernel queues before accepting")

    def __init__(self, **values: Any) -> None:
        """Refuse impossible values (from code, flags or the environment) in one line each."""
        try:
            super().__init__(**values)
        except ValidationError as e:
            problems = "; ".join(_describe(error) for error in e.errors())
            raise ConfigError(f"bad service setting: {problems}") from None


def _describe(error: Any) -> str:
    """`port (DIGITLAB_PORT): Input should be a valid integer` from a pydantic error."""
    name = ".".join(str(part) for part in error.get("loc", ())) or "settings"
    return f"{name} ({ENV_PREFIX}{name.upper()}): {error.get('msg')}"
