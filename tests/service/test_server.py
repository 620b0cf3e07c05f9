"""`serve`: the model checked before listening, uvicorn's options and limits, workers' settings."""

from __future__ import annotations

import asyncio
import os

import pytest
from fastapi.testclient import TestClient

from digitlab.checkpoints.format import save_checkpoint
from digitlab.errors import CheckpointError
from digitlab.service import ServiceSettings, create_app, serve
from digitlab.service.metrics import MULTIPROCESS_ENV
from digitlab.service.protocol import LIMITS_KEY, PROTOCOL, ConnectionLimits
from tests.drawing import digit_image
from tests.service.helpers import RAW, SEVEN, png


@pytest.fixture
def checkpoint(tmp_path, predictor):
    path = tmp_path / "model.pt"
    save_checkpoint(path, predictor.checkpoint)
    return path


@pytest.fixture
def uvicorn_calls(monkeypatch):
    """uvicorn.run replaced: what serve() would have run it with."""
    import uvicorn

    calls: list[tuple[object, dict]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    return calls


def test_the_lifespan_loads_the_checkpoint_named_in_the_settings(checkpoint):
    with TestClient(create_app(ServiceSettings(model=str(checkpoint)))) as client:
        assert client.get("/api/v1/model").json()["name"] == "mlp"
        assert client.get("/readyz").json() == {"status": "ok"}
        assert client.post("/api/v1/predict", content=SEVEN, headers=RAW).status_code == 200


def test_serve_refuses_a_bad_checkpoint_before_listening(tmp_path, uvicorn_calls):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    for path in (tmp_path / "missing.pt", garbage):
        with pytest.raises(CheckpointError) as caught:
            serve(ServiceSettings(model=str(path)))
        assert "\n" not in str(caught.value)
    assert uvicorn_calls == []


def test_serve_hands_the_loaded_model_and_the_limits_to_uvicorn(checkpoint, uvicorn_calls):
    serve(ServiceSettings(model=str(checkpoint), host="127.0.0.1", port=8123, keep_alive_timeout=7,
                          header_timeout=3, max_header_bytes=4096, max_connections=50, backlog=99))
    (app, kwargs), = uvicorn_calls
    assert kwargs["host"] == "127.0.0.1" and kwargs["port"] == 8123
    assert kwargs["timeout_keep_alive"] == 7 and kwargs["backlog"] == 99
    assert kwargs["h11_max_incomplete_event_size"] == 4096
    # The guarded protocol keeps connections under the cap; uvicorn's own 503 is the backstop.
    assert kwargs["http"] == PROTOCOL and kwargs["limit_concurrency"] == 51
    assert TestClient(app).get("/healthz").status_code == 200
    # The protocol gets its limits from the app's lifespan state, which uvicorn hands it.
    assert lifespan_state(app)[LIMITS_KEY] == ConnectionLimits(3, 4096, 50)


def lifespan_state(app) -> dict:
    async def started() -> dict:
        async with app.router.lifespan_context(app) as state:
            return dict(state)

    return asyncio.run(started())


def test_the_connection_cap_stays_under_the_open_file_limit(checkpoint, uvicorn_calls):
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    serve(ServiceSettings(model=str(checkpoint), max_connections=10_000_000))
    (_, kwargs), = uvicorn_calls
    allowed = resource.getrlimit(resource.RLIMIT_NOFILE)[0]  # serve raised it to the hard limit
    assert allowed in (hard, resource.RLIM_INFINITY) and allowed >= soft
    cap = kwargs["limit_concurrency"] - 1
    assert cap < allowed if allowed != resource.RLIM_INFINITY else cap == 10_000_000


def test_serve_with_workers_hands_its_settings_and_a_metrics_folder_to_each(
        checkpoint, uvicorn_calls, monkeypatch):
    from digitlab.service.server import SETTINGS_ENV, app_from_environment

    monkeypatch.delenv(SETTINGS_ENV, raising=False)
    monkeypatch.delenv(MULTIPROCESS_ENV, raising=False)
    import uvicorn

    seen = {}

    def run(app, **kwargs):
        seen["folder"] = os.environ.get(MULTIPROCESS_ENV)
        uvicorn_calls.append((app, kwargs))

    monkeypatch.setattr(uvicorn, "run", run)
    serve(ServiceSettings(model=str(checkpoint), min_confidence=0.8, port=8124, workers=2))
    (target, kwargs), = uvicorn_calls
    assert target == "digitlab.service.server:app_from_environment"
    assert kwargs["factory"] is True and kwargs["workers"] == 2 and kwargs["port"] == 8124
    # Workers wrote their metrics in a folder made for this run, gone after it.
    assert seen["folder"] and not os.path.exists(seen["folder"])
    assert MULTIPROCESS_ENV not in os.environ
    # What a worker process does: build the app from the environment serve() left it.
    with TestClient(app_from_environment()) as client:
        assert client.get("/api/v1/model").json()["min_confidence"] == 0.8
        assert client.post("/api/v1/predict", content=SEVEN, headers=RAW).status_code == 200


def test_workers_get_every_setting_whole(tmp_path, checkpoint, uvicorn_calls, monkeypatch):
    from digitlab.service.server import SETTINGS_ENV, app_from_environment

    monkeypatch.chdir(tmp_path)  # a relative model path reaches workers made absolute
    monkeypatch.delenv(SETTINGS_ENV, raising=False)
    settings = ServiceSettings(model=checkpoint.name, workers=2, min_confidence=0.3,
                               max_upload_bytes=20_000, max_pixels=300 * 300, image_threads=2,
                               max_image_requests=3, request_timeout=4.5, max_discard_bytes=0)
    serve(settings)
    monkeypatch.setenv("DIGITLAB_MIN_CONFIDENCE", "0.9")  # the handed settings win over the environment
    app = app_from_environment()
    assert app.state.settings == settings.model_copy(update={"model": str(checkpoint)})
    with TestClient(app) as client:
        assert client.post("/api/v1/predict", content=SEVEN, headers=RAW).status_code == 200
        too_big = client.post("/api/v1/predict", content=b"\0" * 20_001, headers=RAW)
        assert (too_big.status_code, too_big.json()["error"]) == (413, "payload_too_large")
        wide = client.post("/api/v1/predict", content=png(digit_image("7", size=301)), headers=RAW)
        assert wide.json()["error"] == "image_too_large"
