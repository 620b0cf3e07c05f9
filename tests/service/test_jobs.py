"""The image pool: work off the event loop, 503 + Retry-After when full, the time budget, NaN refused."""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from digitlab.predicting.predictor import Predictor
from digitlab.service import ServiceSettings, create_app
from tests.service.helpers import RAW, SEVEN, number_image, png, untrained_predictor

SEVEN_PIXELS = Image.open(io.BytesIO(SEVEN)).width * Image.open(io.BytesIO(SEVEN)).height


class Gated:
    """A real predictor whose reading waits for `gate`, counting the readings started and
    the threads they ran in."""

    def __init__(self, real: Predictor) -> None:
        self.real, self.gate, self.started, self.threads = real, threading.Event(), 0, set()

    def read(self, *args, **kwargs):
        self.started += 1
        self.threads.add(threading.current_thread().name)
        assert self.gate.wait(timeout=30), "the test never opened the gate"
        return self.real.read(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.real, name)


@pytest.fixture
def gated():
    return Gated(untrained_predictor())


def post_in_background(client: TestClient, count: int):
    pool = ThreadPoolExecutor(count)
    return pool, [pool.submit(client.post, "/api/v1/predict", content=SEVEN, headers=RAW)
                  for _ in range(count)]


def wait_until(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def test_images_are_read_in_the_pool_while_the_loop_answers(gated):
    app = create_app(ServiceSettings(inline_pixels=0), gated)
    with TestClient(app) as client:
        pool, pending = post_in_background(client, 1)
        wait_until(lambda: gated.started == 1)
        # The reading is stuck in its thread, and the event loop still answers.
        assert client.get("/healthz").status_code == 200
        metrics = client.get("/metrics").text
        assert "digitlab_image_jobs_running 1.0" in metrics
        gated.gate.set()
        assert pending[0].result(timeout=30).status_code == 200
        pool.shutdown()
    assert gated.threads == {"digitlab-image_0"}


@pytest.mark.parametrize("limit, in_pool", [(0, True), (SEVEN_PIXELS - 1, True), (SEVEN_PIXELS, False)])
def test_images_up_to_inline_pixels_are_read_on_the_loop_larger_ones_in_the_pool(limit, in_pool):
    seen = Gated(untrained_predictor())
    seen.gate.set()
    with TestClient(create_app(ServiceSettings(inline_pixels=limit), seen)) as client:
        answer = client.post("/api/v1/predict", content=SEVEN, headers=RAW)
        assert answer.status_code == 200 and "work;dur=" in answer.headers["server-timing"]
        assert "digitlab_image_work_seconds_count{endpoint=\"predict\"} 1.0" in client.get("/metrics").text
    assert (seen.threads == {"digitlab-image_0"}) is in_pool and len(seen.threads) == 1


def test_a_full_pool_answers_503_with_retry_after_then_recovers(gated):
    app = create_app(ServiceSettings(max_image_requests=2, inline_pixels=0), gated)
    with TestClient(app) as client:
        pool, pending = post_in_background(client, 2)  # one reading, one waiting for the thread
        wait_until(lambda: gated.started == 1 and app.state.jobs.admitted == 2)
        refused = client.post("/api/v1/predict", content=SEVEN, headers=RAW)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert refused.json()["error"] == "busy"
        gated.gate.set()
        assert [p.result(timeout=30).status_code for p in pending] == [200, 200]
        pool.shutdown()
        assert client.post("/api/v1/predict", content=SEVEN, headers=RAW).status_code == 200
        assert 'digitlab_image_requests_refused_total{reason="busy"} 1.0' in client.get("/metrics").text


def test_work_over_the_time_budget_is_a_503_and_queued_work_is_dropped(gated):
    app = create_app(ServiceSettings(request_timeout=0.5, max_image_requests=4, inline_pixels=0), gated)
    with TestClient(app) as client:
        pool, pending = post_in_background(client, 2)  # the first holds the only thread
        answers = [p.result(timeout=30) for p in pending]
        assert [(a.status_code, a.json()["error"]) for a in answers] == [(503, "timed_out")] * 2
        assert all(a.headers["retry-after"] == "1" for a in answers)
        # The running reading cannot be stopped: its place is kept until it ends.
        assert app.state.jobs.admitted == 1
        gated.gate.set()
        wait_until(lambda: app.state.jobs.admitted == 0)
        assert gated.started == 1  # the queued one never ran: its request had been answered
        assert client.post("/api/v1/predict", content=SEVEN, headers=RAW).status_code == 200
        pool.shutdown()


def broken_model_predictor() -> Predictor:
    """A predictor whose weights are NaN, as a training run gone wrong would leave them."""
    predictor = untrained_predictor()
    with torch.no_grad():
        for parameter in predictor.backend.model.parameters():
            parameter.fill_(float("nan"))
    return predictor


@pytest.mark.parametrize("path, image", [("/api/v1/predict", SEVEN),
                                         ("/api/v1/predict/number", png(number_image("274")))])
def test_a_model_that_answers_nan_is_a_server_error_never_a_nan(path, image):
    with TestClient(create_app(ServiceSettings(), broken_model_predictor())) as client:
        response = client.post(path, content=image, headers=RAW)
    assert response.status_code == 500, response.text
    assert response.json()["error"] == "model_output_not_finite"
    assert "NaN" in response.json()["detail"] and "nan" not in response.text.lower().replace("nan or", "")


def test_serve_refuses_a_model_that_answers_nan_before_listening(tmp_path, monkeypatch):
    import uvicorn

    from digitlab.checkpoints.format import save_checkpoint
    from digitlab.errors import CheckpointError
    from digitlab.service import serve

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("uvicorn started"))
    broken = broken_model_predictor()
    checkpoint = broken.checkpoint
    save_checkpoint(tmp_path / "nan.pt", checkpoint)  # digitlab never writes NaN weights itself:
    payload = torch.load(tmp_path / "nan.pt", weights_only=True)  # a foreign file holds them
    payload["state_dict"] = broken.backend.model.state_dict()
    payload.pop("weights_sha256")
    torch.save(payload, tmp_path / "nan.pt")
    with pytest.raises(CheckpointError) as caught:
        serve(ServiceSettings(model=str(tmp_path / "nan.pt")))
    assert "\n" not in str(caught.value) and ("NaN" in str(caught.value) or "finite" in str(caught.value))
