"""The service through TestClient, with the predictor injected: answers, limits, errors, schema."""

from __future__ import annotations

import dataclasses
import io
import logging
import re
import struct
import zlib

import pytest
import schemathesis
import torch
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from PIL import Image
from schemathesis.checks import not_a_server_error

from digitlab.predicting.predictor import Predictor
from digitlab.service import ServiceSettings, create_app, get_predictor
from tests.drawing import digit_image
from tests.service.helpers import (
    MB,
    RAW,
    SEVEN,
    declared_png,
    decode_data_url,
    number_image,
    png,
    untrained_predictor,
)


@pytest.fixture
def app(predictor):
    # The settings name a checkpoint that does not exist: only the override can answer.
    app = create_app(ServiceSettings(model="no-such-checkpoint.pt"))
    app.dependency_overrides[get_predictor] = lambda: predictor
    return app


@pytest.fixture
def client(app):
    return TestClient(app)  # no `with`: the lifespan (model loading) does not run


def assert_still_serving(client: TestClient) -> None:
    response = client.post("/api/v1/predict", content=SEVEN, headers=RAW)
    assert response.status_code == 200, response.text


# ---------------------------------------------------------------- answers


def test_a_png_digit_gets_ten_probabilities_and_the_image_the_model_saw(client):
    response = client.post("/api/v1/predict?top_k=3", content=SEVEN, headers=RAW)
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["probabilities"]) == 10 and sum(body["probabilities"]) == pytest.approx(1, abs=1e-4)
    assert len(body["top_k"]) == 3 and body["top_k"][0]["probability"] == max(body["probabilities"])
    assert body["confidence"] == pytest.approx(max(body["probabilities"]))
    assert body["preprocess"]["pipeline"] == "robust" and body["preprocess"]["has_ink"]
    seen = decode_data_url(body["input_png"])
    assert seen.size == (28, 28) and seen.mode == "L" and seen.getextrema()[1] > 0
    total = float(response.headers["X-Process-Time-Ms"])
    timing = dict(part.strip().split(";dur=") for part in response.headers["Server-Timing"].split(","))
    assert 0 < float(timing["work"]) <= float(timing["total"]) == pytest.approx(total, abs=0.01)


def test_multipart_and_raw_bodies_give_the_same_answer(client):
    raw = client.post("/api/v1/predict", content=SEVEN, headers=RAW).json()
    form = client.post("/api/v1/predict", files={"file": ("seven.png", SEVEN, "image/png")}).json()
    assert raw == form


def test_a_blank_canvas_is_no_digit(client):
    body = client.post("/api/v1/predict", content=png(Image.new("L", (280, 280), 255)),
                       headers=RAW).json()
    assert body["no_digit"] and body["digit"] is None and body["reason"]
    assert body["probabilities"] is None and decode_data_url(body["input_png"]).size == (28, 28)


def test_a_number_gets_one_box_per_digit_left_to_right(client):
    image = number_image("274")
    response = client.post("/api/v1/predict/number", files={"file": ("n.png", png(image), "image/png")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["size"] == list(image.size) and len(body["digits"]) == 3 == len(body["text"])
    lefts = [d["box"][0] for d in body["digits"]]
    assert lefts == sorted(lefts)
    for digit in body["digits"]:
        x0, y0, x1, y1 = digit["box"]
        assert 0 <= x0 < x1 <= image.width and 0 <= y0 < y1 <= image.height
        assert len(digit["probabilities"]) == 10
        assert decode_data_url(digit["input_png"]).size == (28, 28)


def test_model_description_and_health(client):
    model = client.get("/api/v1/model").json()
    assert model["name"] == "mlp" and model["recipe"] == "tutorial-mlp"
    assert model["classes"] == [str(d) for d in range(10)] and model["digitlab_version"]
    assert model["test_accuracy"] == 0.1 and model["min_confidence"] == 0.5
    assert model["temperature"] == 1.0  # the test model was never calibrated
    assert client.get("/healthz").json() == {"status": "ok"}


def test_ready_only_once_the_model_is_loaded(client):
    # `client` never ran the lifespan, so no model was loaded (routes get theirs by override)
    not_ready = client.get("/readyz")
    assert (not_ready.status_code, not_ready.json()["error"]) == (503, "model_not_loaded")
    assert client.get("/healthz").status_code == 200  # alive all the same


GETS = ["/", "/healthz", "/api/v1/model", "/metrics", "/docs", "/openapi.json", "/static/app.js",
        "/docs/assets/swagger-ui.css"]


@pytest.mark.parametrize("path", GETS)
def test_head_is_allowed_wherever_get_is(client, path):
    got, head = client.get(path), client.head(path)
    assert got.status_code == head.status_code == 200
    assert head.content == b"" and head.headers["content-type"] == got.headers["content-type"]


def test_head_is_refused_where_get_is(client):
    response = client.head("/api/v1/predict")
    assert response.status_code == 405 and response.headers["allow"] == "POST"


def test_the_api_docs_come_from_the_package(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from a CDN
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    for asset in assets:
        assert asset.startswith("/") and client.get(asset).status_code == 200, asset
    assert client.get("/redoc").status_code == 404  # ReDoc would load from a CDN: it is off


def test_a_fashion_model_answers_with_class_names(predictor):
    from digitlab.data import FASHION_MNIST

    checkpoint = dataclasses.replace(predictor.checkpoint, classes=list(FASHION_MNIST.classes),
                                     dataset=FASHION_MNIST.name)
    fashion = Predictor.from_model(predictor.backend.model, checkpoint)
    app = create_app(ServiceSettings(model="no-such-checkpoint.pt", min_confidence=0))
    app.dependency_overrides[get_predictor] = lambda: fashion
    client = TestClient(app)
    model = client.get("/api/v1/model").json()
    assert model["dataset"] == "fashion-mnist" and model["classes"][7] == "Sneaker"
    shoe = Image.new("L", (200, 120), 255)
    shoe.paste(40, (20, 40, 180, 100))
    answer = client.post("/api/v1/predict", content=png(shoe), headers=RAW).json()
    assert answer["label"] in FASHION_MNIST.classes and answer["preprocess"]["pipeline"] == "product"
    assert {t["label"] for t in answer["top_k"]} <= set(FASHION_MNIST.classes)
    refused = client.post("/api/v1/predict/number", content=png(shoe), headers=RAW)
    assert refused.status_code == 422 and "needs a digit model" in refused.json()["detail"]


def test_the_page_and_its_assets_are_served_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("/static/app.js", "/static/style.css"):
        assert asset in page.text and client.get(asset).status_code == 200
    assert "http://" not in page.text and "https://" not in page.text  # nothing from a CDN


def test_openapi_describes_the_api(client):
    schema = client.get("/openapi.json").json()
    assert {"/api/v1/predict", "/api/v1/predict/number", "/api/v1/model", "/healthz"} <= set(schema["paths"])
    body = schema["paths"]["/api/v1/predict"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body and "image/png" in body
    assert schema["paths"]["/api/v1/predict"]["post"]["summary"]


def test_each_request_is_logged_on_one_line(client, caplog):
    with caplog.at_level(logging.INFO, logger="digitlab.service.middleware"):
        client.get("/healthz")
    assert any(r.getMessage().startswith("GET /healthz 200 ") and r.getMessage().endswith(" ms")
               for r in caplog.records)


# ---------------------------------------------------------------- refusals


def truncated_png() -> bytes:
    noise = torch.randint(0, 256, (200, 200), generator=torch.Generator().manual_seed(0))
    data = png(Image.fromarray(noise.to(torch.uint8).numpy()))
    return data[: len(data) // 2]


def multipart_bytes(body: bytes, boundary: str = "b0undary") -> dict:
    return {"content": body, "headers": {"content-type": f"multipart/form-data; boundary={boundary}"}}


def sixteen_bit_rgba_header(width: int, height: int) -> bytes:
    """A PNG that declares width×height 16-bit RGBA pixels (its data is a stub)."""
    png_bytes = bytearray(declared_png(width, height))
    png_bytes[24:26] = bytes([16, 6])  # IHDR bit depth and colour type
    png_bytes[29:33] = struct.pack(">I", zlib.crc32(bytes(png_bytes[12:29])))
    return bytes(png_bytes)


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto 10 10 lineto stroke\n%%EOF\n"

BAD = {
    "truncated png": ({"files": {"file": ("t.png", truncated_png(), "image/png")}}, 400, "unreadable_image"),
    "text named .png": ({"files": {"file": ("notes.png", b"just some text\n", "image/png")}},
                        415, "not_an_image"),
    "20000x20000 header": ({"content": declared_png(20_000, 20_000), "headers": RAW},
                           413, "image_too_large"),
    "7000x6000 header": ({"content": declared_png(7_000, 6_000), "headers": RAW}, 413, "image_too_large"),
    "16-bit RGBA 39.7 MP header": ({"content": sixteen_bit_rgba_header(7280, 5456), "headers": RAW},
                                   413, "image_too_large"),
    "EPS (never handed to Ghostscript)": ({"files": {"file": ("x.eps", EPS, "image/png")}},
                                          415, "not_an_image"),
    "empty body": ({"content": b"", "headers": RAW}, 400, "empty_upload"),
    "empty body, no type": ({}, 400, "empty_upload"),
    "empty file": ({"files": {"file": ("e.png", b"", "image/png")}}, 400, "empty_upload"),
    "json": ({"content": b'{"x": 1}', "headers": {"content-type": "application/json"}},
             415, "unsupported_media_type"),
    "text/plain": ({"content": SEVEN, "headers": {"content-type": "text/plain"}},
                   415, "unsupported_media_type"),
    "no content type": ({"content": SEVEN, "headers": {"content-type": ""}}, 415, "unsupported_media_type"),
    "6 MB raw": ({"content": b"\0" * (6 * MB), "headers": RAW}, 413, "payload_too_large"),
    "6 MB file": ({"files": {"file": ("big.png", b"\0" * (6 * MB), "image/png")}}, 413, "payload_too_large"),
    "form without file": ({"data": {"name": "x"}, "files": {"other": ("a.png", SEVEN, "image/png")}},
                          400, "missing_file"),
    "broken multipart": (multipart_bytes(b"--b0undary\r\nContent-Disposition: form-data\r\n\r\nx"),
                         400, "invalid_multipart"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_uploads_get_json_errors_and_the_server_keeps_serving(client, case):
    kwargs, status, code = BAD[case]
    response = client.post("/api/v1/predict", **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code and isinstance(body["detail"], str) and body["detail"]
    assert_still_serving(client)


def test_the_number_endpoint_refuses_the_same_way(client):
    response = client.post("/api/v1/predict/number", content=b"hello", headers=RAW)
    assert (response.status_code, response.json()["error"]) == (415, "not_an_image")
    assert client.post("/api/v1/predict/number", content=SEVEN, headers=RAW).status_code == 200


def test_bodies_are_counted_as_they_arrive_whatever_the_headers_say(client):
    def chunks():  # no Content-Length: sent chunked
        for _ in range(7):
            yield b"\0" * MB

    chunked = client.post("/api/v1/predict", content=chunks(), headers=RAW)
    assert (chunked.status_code, chunked.json()["error"]) == (413, "payload_too_large")
    lying = client.post("/api/v1/predict", content=b"\0" * (6 * MB),
                        headers={**RAW, "content-length": "100"})
    assert (lying.status_code, lying.json()["error"]) == (413, "payload_too_large")
    assert_still_serving(client)


def test_limits_come_from_the_settings(predictor):
    app = create_app(ServiceSettings(max_upload_bytes=20_000, max_pixels=300 * 300))
    app.dependency_overrides[get_predictor] = lambda: predictor
    client = TestClient(app)
    assert len(SEVEN) < 20_000
    assert client.post("/api/v1/predict", content=SEVEN, headers=RAW).status_code == 200
    wide = png(digit_image("7", size=301))
    assert client.post("/api/v1/predict", content=wide, headers=RAW).json()["error"] == "image_too_large"
    assert client.post("/api/v1/predict", content=b"\0" * 20_001, headers=RAW).status_code == 413


def test_framework_errors_are_json_too(client):
    for response, status, code in [
        (client.get("/no/such/page"), 404, "not_found"),
        (client.get("/api/v1/predict"), 405, "method_not_allowed"),
        (client.post("/api/v1/predict?top_k=0", content=SEVEN, headers=RAW), 422, "invalid_request"),
        (client.post("/api/v1/predict?top_k=x", content=SEVEN, headers=RAW), 422, "invalid_request"),
    ]:
        assert response.status_code == status
        assert response.json()["error"] == code and response.json()["detail"]


def test_an_image_that_breaks_the_model_is_a_client_error_not_a_crash(app):
    class Broken:
        def read(self, *args, **kwargs):
            raise RuntimeError("boom")

    app.dependency_overrides[get_predictor] = lambda: Broken()
    response = TestClient(app).post("/api/v1/predict", content=SEVEN, headers=RAW)
    assert (response.status_code, response.json()["error"]) == (422, "unprocessable_image")



# ---------------------------------------------------------------- the schema, fuzzed


# Built at import, as `schema.parametrize()` needs; the lifespan runs, so the app gets its
# predictor directly. (`schemathesis.pytest.from_fixture` breaks on pytest 9: no Node._nodeid.)
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(ServiceSettings(), untrained_predictor()))


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests_never_get_a_server_error(case):
    case.call_and_validate(checks=[not_a_server_error])


def test_a_big_phone_photo_is_read_not_refused(client):
    # 24 MP would take 96 MB decoded whole, over the 64 MB limit: the JPEG decoder reduces it.
    page = Image.new("L", (6000, 4000), 200)
    page.paste(digit_image("7", size=2000, paper=200, ink=20), (2000, 1000))
    body = io.BytesIO()
    page.convert("RGB").save(body, format="JPEG", quality=80)
    response = client.post("/api/v1/predict", content=body.getvalue(), headers={"content-type": "image/jpeg"})
    assert response.status_code == 200, response.text
    steps = response.json()["preprocess"]  # the untrained model's answer says nothing; the ink does
    assert steps["has_ink"] and 2048 <= max(steps["size"]) < 6000
