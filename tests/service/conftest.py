"""Fixtures shared by the service tests (pyproject's filterwarnings silences Starlette's
note about httpx, with which TestClient still works)."""

from __future__ import annotations

import pytest

from digitlab.predicting.predictor import Predictor
from tests.service.helpers import untrained_predictor


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    """A predictor with untrained weights: the service's plumbing, not its accuracy."""
    return untrained_predictor()
