"""What `digitlab serve` serves and the limits it enforces: one frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from digitlab.errors import ConfigError
from digitlab.reading.images import MAX_PIXELS
from digitlab.reading.predictor import MIN_CONFIDENCE


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
