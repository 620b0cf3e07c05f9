"""The drawing page in a real browser (Debian's chromium, driven by Playwright) on a live server.

Screenshots go to $DIGITLAB_ARTIFACTS or <repo>/artifacts/ (git-ignored, but for the two the README
shows: page-explanation.png here, report-mistakes-explained.png from tests/reports).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest
import uvicorn

from digitlab.checkpoints.format import DEFAULT_MODEL
from digitlab.predicting.predictor import Predictor
from digitlab.service import ServiceSettings, create_app
from tests.drawing import digit_image

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("DIGITLAB_ARTIFACTS") or Path(__file__).resolve().parents[2] / "artifacts")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no browser: {CHROMIUM} is missing "
                       "(apt-get install chromium)"),
]

Stroke = list[tuple[float, float]]  # points as fractions of the canvas's width and height
SEVEN: list[Stroke] = [[(0.28, 0.22), (0.72, 0.22), (0.45, 0.82)]]
ONE: list[Stroke] = [[(0.42, 0.3), (0.55, 0.18), (0.55, 0.82)]]


@pytest.fixture(scope="module")
def predictor(request: pytest.FixtureRequest) -> Predictor:
    """The packaged model when this install has one, else the tiny run trained for the tests."""
    if DEFAULT_MODEL.is_file():
        return Predictor.from_checkpoint()
    return Predictor.from_checkpoint(request.getfixturevalue("tiny_run") / "best.pt")


@pytest.fixture(scope="module")
def base_url(predictor: Predictor) -> Iterator[str]:
    app = create_app(ServiceSettings(), predictor)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, base_url):
    context = browser.new_context(viewport={"width": 1200, "height": 820})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base_url + "/")
    yield page
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def draw(page, strokes: list[Stroke], steps: int = 12) -> None:
    """Draw with the mouse: down, many small moves, up, for each stroke."""
    box = page.locator("#canvas").bounding_box()

    def at(x: float, y: float) -> tuple[float, float]:
        return box["x"] + x * box["width"], box["y"] + y * box["height"]

    for stroke in strokes:
        page.mouse.move(*at(*stroke[0]))
        page.mouse.down()
        for (x0, y0), (x1, y1) in pairwise(stroke):
            for i in range(1, steps + 1):
                page.mouse.move(*at(x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps))
        page.mouse.up()


def settled_answer(page) -> str:
    """The answer once the page has asked about what is drawn now."""
    page.wait_for_selector('#result[data-pending="false"]', timeout=20_000)
    return page.locator("#answer").inner_text()


def save_screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def test_drawing_a_digit_shows_the_answer_bars_and_what_the_model_saw(page):
    assert page.locator("#answer").inner_text() == "?"
    draw(page, SEVEN)
    assert settled_answer(page) == "7"
    assert page.locator("#answer").get_attribute("data-state") == "digit"
    assert "7" in page.locator("#summary").inner_text()
    assert page.locator("#bars li").count() == 10
    assert page.locator("#bars li.is-top .digit").inner_text() == "7"
    assert page.locator("#seen").get_attribute("src").startswith("data:image/png;base64,")
    assert page.evaluate("() => document.getElementById('seen').naturalWidth") == 28
    # The canvas is shown wider than its 280 logical pixels: the ink must land where we drew.
    x0, y0, x1, y1 = page.evaluate("() => state.last.preprocess.ink_box")
    assert abs(x0 - 0.28 * 280) < 15 and abs(x1 - 0.72 * 280) < 15
    assert abs(y0 - 0.22 * 280) < 15 and abs(y1 - 0.82 * 280) < 15
    save_screenshot(page, "page-after-drawing.png")


def test_why_overlays_the_strokes_that_decided_the_answer(page):
    draw(page, SEVEN)
    assert settled_answer(page) == "7"
    assert page.locator("#why").is_hidden()  # off until asked for
    page.get_by_label("Why?").check()
    page.wait_for_selector("#why:not([hidden])", timeout=20_000)
    assert settled_answer(page) == "7"
    why = page.locator("#why")
    assert why.get_attribute("src").startswith("data:image/png;base64,")
    page.wait_for_function("() => document.getElementById('why').complete")
    assert page.evaluate("() => document.getElementById('why').naturalWidth") == 280
    # it lies over the drawing, and it is coloured where the 7 was drawn (and clear elsewhere)
    pad, layer = page.locator("#canvas").bounding_box(), why.bounding_box()
    assert abs(layer["x"] - pad["x"]) < 2 and abs(layer["width"] - pad["width"]) < 2
    counts = page.evaluate("""() => {
        const img = document.getElementById('why');
        const c = document.createElement('canvas'); c.width = 280; c.height = 280;
        const g = c.getContext('2d'); g.drawImage(img, 0, 0);
        const d = g.getImageData(0, 0, 280, 280).data;
        let red = 0, seen = 0, corner = 0;
        for (let i = 0; i < d.length; i += 4) {
            const x = (i / 4) % 280, y = Math.floor(i / 4 / 280);
            if (d[i + 3] > 40) { seen++; if (d[i] > d[i + 2]) red++; if (x < 40 && y > 240) corner++; }
        }
        return { red, seen, corner }; }""")
    assert counts["seen"] > 500 and counts["red"] > counts["seen"] / 2 and counts["corner"] == 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator(".layout > section").first.screenshot(path=str(ARTIFACTS / "page-explanation.png"))
    page.get_by_role("button", name="A number").click()  # numbers are explained too, digit by digit
    page.get_by_role("button", name="Clear").click()  # the 7 drawn for one digit stays otherwise
    draw(page, [[(0.12, 0.25), (0.17, 0.15), (0.17, 0.85)], [(0.35, 0.2), (0.5, 0.2), (0.4, 0.85)]])
    assert len(settled_answer(page)) == 2
    page.wait_for_selector("#why:not([hidden])", timeout=20_000)
    assert page.evaluate("() => document.getElementById('why').naturalWidth") == 280  # 700×280 → 280×112
    page.get_by_label("Why?").uncheck()
    settled_answer(page)
    page.wait_for_selector("#why[hidden]", state="attached", timeout=20_000)


def test_undo_and_clear_with_buttons_and_keys(page):
    draw(page, ONE)
    assert settled_answer(page) == "1"
    page.get_by_role("button", name="Undo").click()
    assert settled_answer(page) == "?"
    draw(page, ONE)
    assert settled_answer(page) == "1"
    page.keyboard.press("Control+z")
    assert settled_answer(page) == "?"
    draw(page, ONE)
    settled_answer(page)
    page.get_by_role("button", name="Clear").focus()
    page.keyboard.press("Enter")  # a real button: the keyboard works it
    assert settled_answer(page) == "?" and page.locator("#answer").get_attribute("data-state") == "empty"


def test_a_chosen_file_is_read(page, tmp_path):
    path = tmp_path / "one.png"
    digit_image("1", size=300, stroke=20).save(path)
    page.set_input_files("#file", str(path))
    # The file is decoded asynchronously before its request goes out: wait for that first.
    page.wait_for_function("() => document.getElementById('answer').innerText !== '?'", timeout=20_000)
    assert settled_answer(page) == "1"
    assert page.locator("#clear").is_enabled()


def test_number_mode_outlines_each_digit(page):
    page.get_by_role("button", name="A number").click()
    assert page.locator("#mode-number").get_attribute("aria-pressed") == "true"
    draw(page, [[(0.12, 0.25), (0.17, 0.15), (0.17, 0.85)],  # a 1 at the left
                [(0.35, 0.2), (0.5, 0.2), (0.4, 0.85)]])  # a 7 beside it
    text = settled_answer(page)
    assert len(text) == 2 and page.locator("#digits .tile").count() == 2
    boxes = page.evaluate("() => state.boxes.list.map(b => b.box)")
    assert len(boxes) == 2 and boxes[0][2] <= boxes[1][0]  # left to right, apart
    inked = page.evaluate("""() => {
        const o = document.getElementById('overlay');
        const d = o.getContext('2d').getImageData(0, 0, o.width, o.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; }""")
    assert inked > 100  # the outlines are drawn
    save_screenshot(page, "page-number-mode.png")


def test_the_page_fits_a_phone(browser, base_url):
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    page = context.new_page()
    page.goto(base_url + "/")
    canvas = page.locator("#canvas").bounding_box()
    assert canvas["width"] <= 390 and canvas["x"] >= 0
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    draw(page, SEVEN)
    assert settled_answer(page) == "7"
    save_screenshot(page, "page-phone.png")
    context.close()


def test_the_controls_are_labelled(page):
    for name in ("Undo", "Clear", "Open image…", "One digit", "A number"):
        assert page.get_by_role("button", name=name).count() == 1
    assert page.get_by_label("Pen width").get_attribute("type") == "range"
    assert page.locator("#result").get_attribute("aria-live") == "polite"
    assert page.locator("#canvas").get_attribute("aria-label")


def test_the_api_docs_render_with_the_network_blocked(browser, base_url):
    context = browser.new_context(viewport={"width": 1200, "height": 820})
    outside: list[str] = []

    def only_this_server(route):
        if route.request.url.startswith(base_url):
            route.continue_()
        else:  # a CDN, fonts, the Swagger validator...: none may be needed
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_this_server)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base_url + "/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=20_000)  # rendered from /openapi.json
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/v1/predict" in paths and "/healthz" in paths
    save_screenshot(page, "api-docs-offline.png")
    context.close()
    assert not outside and not errors, (outside, errors)
