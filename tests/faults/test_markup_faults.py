"""Class names are data, never markup: escaped in the report, never parsed as HTML by the page,
and both carry a Content-Security-Policy that forbids inline script."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import uvicorn
from fastapi.testclient import TestClient
from PIL import Image

from digitlab.reports import html
from digitlab.reports.report import Example
from digitlab.service import ServiceSettings, create_app
from tests.faults.test_model_faults import damaged, one_line_error
from tests.service import test_page
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


# Short enough to pass the checkpoint's check: the page must still show it as text.
MARKUP_CLASSES = [f"<img src=x onerror=p{d}=1>" for d in range(10)]


@pytest.fixture(scope="module")
def markup_predictor(tmp_path_factory):
    from digitlab.predicting.predictor import Predictor

    folder = tmp_path_factory.mktemp("markup")
    return Predictor.from_checkpoint(damaged(folder, lambda payload: payload.update(classes=MARKUP_CLASSES)))


@pytest.mark.slow
@pytest.mark.skipif(not test_page.CHROMIUM.exists(), reason="no browser: /usr/bin/chromium is missing")
def test_the_page_shows_markup_class_names_as_text_in_number_mode(markup_predictor):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(test_page.CHROMIUM),
                                    args=["--no-sandbox", "--headless"])
        try:
            ran, labels, injected = number_mode_labels(browser, markup_predictor)
        finally:
            browser.close()
    assert ran == [] and injected == 0
    assert labels and all(label in MARKUP_CLASSES or label == "?" for label in labels)


def number_mode_labels(browser, predictor):
    """What the page shows after reading a drawn 7 in number mode: the injected handlers that ran,
    the tiles' labels, the images with src=x."""
    with serving(predictor) as base:
        context = browser.new_context(viewport={"width": 1200, "height": 820})
        page = context.new_page()
        page.goto(base + "/")
        page.click("#mode-number")
        test_page.draw(page, test_page.SEVEN)
        test_page.settled_answer(page)
        page.wait_for_timeout(500)  # time for an injected image's onerror to have run
        ran = page.evaluate("() => Object.keys(window).filter((k) => /^p[0-9]$/.test(k))")
        labels = page.locator(".tile-digit").all_inner_texts()
        injected = page.locator('img[src="x"]').count()
        context.close()
    return ran, labels, injected


@contextlib.contextmanager
def serving(predictor):
    """The app with `predictor` in a uvicorn thread; its base URL."""
    app = create_app(ServiceSettings(), predictor)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive()
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
