"""/metrics in Prometheus' text format: requests, latency, image work, queue, the model served."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from digitlab.service import ServiceSettings, create_app
from tests.service.helpers import RAW, SEVEN, get, live_server, untrained_predictor


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a /metrics text: (name, labels) → value."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: dict, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in found.items() if n == name and set(labels.items()) <= ls)


def test_metrics_count_requests_by_route_and_status_and_describe_the_model():
    with TestClient(create_app(ServiceSettings(), untrained_predictor())) as client:
        for _ in range(5):
            assert client.post("/api/v1/predict", content=SEVEN, headers=RAW).status_code == 200
        client.post("/api/v1/predict", content=b"not an image", headers=RAW)
        client.get("/healthz"), client.get("/healthz"), client.get("/no/such/page/123")
        response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    requests = "digitlab_http_requests_total"
    assert value(found, requests, route="/api/v1/predict", method="POST", status="200") == 5
    assert value(found, requests, route="/api/v1/predict", status="415") == 1
    assert value(found, requests, route="/healthz", method="GET", status="200") == 2
    assert value(found, requests, route="unmatched", status="404") == 1  # not one label per URL
    assert value(found, "digitlab_http_request_duration_seconds_count", route="/api/v1/predict") == 6
    assert value(found, "digitlab_image_work_seconds_count", endpoint="predict") == 6
    assert value(found, "digitlab_image_queue_depth") == 0
    assert value(found, "digitlab_image_jobs_running") == 0
    (model,) = [dict(ls) for (n, ls), v in found.items() if n == "digitlab_model_info" and v == 1]
    assert model["name"] == "mlp" and model["recipe"] == "tutorial-mlp" and model["dataset"] == "mnist"
    assert re.fullmatch(r"[0-9a-f]{64}", model["sha256"])


def test_the_model_digest_is_the_one_written_in_its_checkpoint():
    import torch

    from digitlab.checkpoints.format import DEFAULT_MODEL, DIGEST
    from digitlab.predicting.predictor import Predictor

    written = torch.load(DEFAULT_MODEL, map_location="cpu", weights_only=True)[DIGEST]
    with TestClient(create_app(ServiceSettings(), Predictor.load())) as client:
        found = samples(client.get("/metrics").text)
    (model,) = [dict(ls) for (n, ls), v in found.items() if n == "digitlab_model_info" and v == 1]
    assert model["sha256"] == written


@pytest.mark.slow
def test_with_two_workers_metrics_count_every_workers_requests():
    with live_server(workers=2) as base:
        wait_for_workers(base, 2)

        def post(_: int) -> int:
            request = urllib_request(base + "/api/v1/predict", SEVEN)
            with urlopen(request, timeout=60) as r:
                return r.status

        with ThreadPoolExecutor(8) as pool:  # new connections, spread over the workers
            assert list(pool.map(post, range(40))) == [200] * 40
        for _ in range(4):  # whichever worker answers /metrics, it tells the sum
            found = samples(get(base + "/metrics")[2].decode())
            assert value(found, "digitlab_http_requests_total", route="/api/v1/predict", status="200") == 40
            assert value(found, "digitlab_image_work_seconds_count") == 40
            assert len(live_workers(found)) == 2


def live_workers(found: dict) -> set[str]:
    return {dict(ls)["pid"] for (n, ls), v in found.items() if n == "digitlab_worker_up" and v == 1}


def wait_for_workers(base: str, count: int, timeout: float = 180) -> None:
    """/readyz answers once one worker is up; the others may still be loading the model."""
    deadline = time.monotonic() + timeout
    while len(live_workers(samples(get(base + "/metrics")[2].decode()))) < count:
        assert time.monotonic() < deadline, f"{count} workers did not start within {timeout:.0f} s"
        time.sleep(0.5)


def urllib_request(url: str, body: bytes):
    import urllib.request

    return urllib.request.Request(url, data=body, headers=RAW)


def urlopen(request, timeout: float):
    import urllib.request

    return urllib.request.urlopen(request, timeout=timeout)
