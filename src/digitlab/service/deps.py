"""What routes get injected with `Depends`: the predictor, the settings and the image pool
(tests override them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from digitlab.predicting.predictor import Predictor
from digitlab.service.errors import ApiError
from digitlab.service.jobs import ImageJobs
from digitlab.service.settings import ServiceSettings


# Dependencies are `async def`: FastAPI runs plain `def` ones in the threadpool, a thread hop
# per dependency per request for what is an attribute lookup.
async def get_predictor(request: Request) -> Predictor:
    predictor = getattr(request.app.state, "predictor", None)
    if predictor is None:
        raise ApiError(503, "model_not_loaded", "the model is not loaded yet")
    return predictor  # type: ignore[no-any-return]


async def get_settings(request: Request) -> ServiceSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_jobs(request: Request) -> ImageJobs:
    return request.app.state.jobs  # type: ignore[no-any-return]


PredictorDep = Annotated[Predictor, Depends(get_predictor)]
SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]
JobsDep = Annotated[ImageJobs, Depends(get_jobs)]
