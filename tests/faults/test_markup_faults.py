"""Class names are data, never markup: escaped in the report, never parsed as HTML by the page,
and both carry a Content-Security-Policy that forbids inline script."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from digitlab.reports import html
from digitlab.reports.report import Example
from digitlab.service import ServiceSettings, create_app
from tests.faults.test_model_faults import damaged, one_line_error
from tests.service.helpers import untrained_predictor

APP_JS = Path(html.__file__).resolve().parents[1] / "service" / "static" / "app.js"
INJECTED = "<img src=x onerror=alert(document.domain)>"


def digits_but(name: str) -> list[str]:
    return [name, *(str(d) for d in range(1, 10))]


@pytest.mark.parametrize("name", [INJECTED, "7\n8", "seven\x1b[2J", "\u202eevil", "", "x" * 33])
def test_a_checkpoint_whose_class_names_are_not_names_is_refused_in_one_line(tmp_path, capsys, name):
    path = damaged(tmp_path, lambda payload: payload.update(classes=digits_but(name)))
    png = tmp_path / "blank.png"
    Image.new("L", (28, 28)).save(png)
    line = one_line_error(capsys, "classify", png, "--model", path)
    assert "class 0" in line and "is not a name" in line


def test_report_captions_escape_class_names():
    report = SimpleNamespace(test_images=torch.zeros(1, 28, 28, dtype=torch.uint8))
    shown = html._digits(report, [Example(0, INJECTED, "7", 0.9)], "gallery")  # type: ignore[arg-type]
    assert "<img src=x" not in shown
    assert "&lt;img src=x onerror=alert(document.domain)&gt;" in shown


def test_report_carries_a_policy_without_script():
    policy = html.report_policy()
    assert "script-src 'none'" in policy and "default-src 'none'" in policy
    assert "unsafe-inline" not in policy


def test_the_page_never_parses_model_data_as_markup():
    script = APP_JS.read_text()
    assert not re.search(r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write", script)


def test_the_service_sends_a_strict_policy_and_relative_redirects():
    app = create_app(ServiceSettings(), untrained_predictor())
    with TestClient(app, base_url="http://digitlab.test") as client:
        for path in ("/", "/static/app.js", "/api/v1/model", "/healthz"):
            policy = client.get(path).headers["content-security-policy"]
            assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("style-src")[0]
        docs = client.get("/docs").headers["content-security-policy"]
        assert "'sha256-" in docs and "script-src 'self' 'sha256-" in docs
        moved = client.get("/static", headers={"host": "evil.example"}, follow_redirects=False)
        assert 300 <= moved.status_code < 400
        assert moved.headers["location"] == "/static/"
