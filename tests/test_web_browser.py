"""The web page in a real browser: Debian's chromium, driven by Playwright, against a real
``renderlab serve`` (embedded workers, SQLite, local storage).

The server runs with ``RENDERLAB_RENDERS_PER_HOUR=2`` so running out of quota takes two renders,
not five. With ``RENDERLAB_SCREENSHOT_DIR`` set, the mid-render screenshot is also written there
(``docs/web-rendering.png`` is made that way). Chromium missing is a failure, never a skip.

The router's own behaviour (types, caching, CSP, identity mode) and ``POST /v1/stills`` are
checked first without a browser.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from renderlab.api import create_app
from renderlab.api.routes import stills
from renderlab.config import Settings
from renderlab.db import Database
from renderlab.limits import Limits
from renderlab.services import Services
from tests.api_helpers import bearer
from tests.render_helpers import ffprobe
from tests.serve_helpers import Server, serve
from tests.web_helpers import CHROMIUM_ARGS, ConsoleEntry, is_expected, require_chromium

QUOTA = 2
TIMEOUT_MS = 30_000
PROPS = {"text": "Hi", "style": "fade-in", "color": "#FFFFFF", "duration_in_frames": 60}


# -- the router and the stills route, without a browser ---------------------------------------


def _client(tmp_path: Path, sqlite_template: Path, **settings: object) -> TestClient:
    path = tmp_path / "web.db"
    path.write_bytes(sqlite_template.read_bytes())
    db = Database(f"sqlite:///{path}")
    services = Services(
        settings=Settings(data_dir=tmp_path / "data", database_url=db.url, **settings),
        limits=Limits(),
        db=db,
    )
    app = create_app(services)
    if not any(getattr(route, "path", "") == "/v1/stills" for route in app.routes):
        app.include_router(stills.router(app.state.ctx))
    return TestClient(app)


def test_page_and_files_are_served_with_types_cache_headers_and_csp(
    tmp_path: Path, sqlite_template: Path
) -> None:
    client = _client(tmp_path, sqlite_template)
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert '<meta name="renderlab-auth-mode" content="local">' in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert page.headers["cache-control"] == "no-cache"

    types = {"app.js": "text/javascript", "app.css": "text/css", "favicon.svg": "image/svg+xml"}
    for name, content_type in types.items():
        response = client.get(f"/static/{name}")
        assert response.status_code == 200, name
        assert response.headers["content-type"].startswith(content_type)
        assert response.headers["x-content-type-options"] == "nosniff"
        again = client.get(f"/static/{name}", headers={"If-None-Match": response.headers["etag"]})
        assert again.status_code == 304 and again.content == b""

    for missing in ("/static/nope.js", "/static/..%2Fpyproject.toml", "/static/index.html"):
        assert client.get(missing).status_code == 404, missing


def test_page_asks_for_a_token_when_an_identity_provider_is_configured(
    tmp_path: Path, sqlite_template: Path
) -> None:
    client = _client(
        tmp_path,
        sqlite_template,
        jwks_url="http://127.0.0.1:9/jwks.json",
        jwt_issuer="https://issuer.test/",
        jwt_audience="renderlab",
    )
    assert '<meta name="renderlab-auth-mode" content="provider">' in client.get("/").text
    assert client.post("/v1/auth/token", json={"name": "ada"}).status_code == 404


def test_stills_draws_unsaved_props_and_names_bad_fields(
    tmp_path: Path, sqlite_template: Path
) -> None:
    client = _client(tmp_path, sqlite_template)
    auth = bearer(client.app, "ada")  # type: ignore[arg-type]
    body = {"animation_props": PROPS, "frame": 59, "width": 320, "height": 180}
    png = client.post("/v1/stills", json=body, headers=auth)
    assert png.status_code == 200, png.text
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG") and png.headers["cache-control"] == "no-store"
    assert client.get("/v1/generations", headers=auth).json()["items"] == []  # nothing stored

    assert client.post("/v1/stills", json=body).status_code == 401
    bad = {**body, "animation_props": {**PROPS, "text": "", "font_size": 5}}
    error = client.post("/v1/stills", json=bad, headers=auth).json()["error"]
    assert error["code"] == "invalid_request"
    named = {f["field"]: f["message"] for f in error["fields"]}
    assert named["animation_props.text"] == "text must not be empty"
    assert "animation_props.font_size" in named
    late = client.post("/v1/stills", json={**body, "frame": 60}, headers=auth)
    assert late.status_code == 422 and late.json()["error"]["fields"][0]["field"] == "frame"
    odd = client.post("/v1/stills", json={**body, "width": 321}, headers=auth)
    assert odd.json()["error"]["code"] == "invalid_resolution"


# -- the page in chromium -------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("web") / "data"
    with serve(data, RENDERLAB_WORKERS="1", RENDERLAB_RENDERS_PER_HOUR=str(QUOTA)) as running:
        if httpx.post(f"{running.base}/v1/stills", json={}).status_code == 404:
            pytest.fail(
                "POST /v1/stills is not mounted: the page's live preview needs it "
                "(add renderlab.api.routes.stills to create_app's routers)"
            )
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = require_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def open_page(browser: Browser, console: list[ConsoleEntry], width: int, height: int) -> Page:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)

    def on_console(message: object) -> None:
        if message.type == "error":  # type: ignore[attr-defined]
            url = message.location.get("url", "")  # type: ignore[attr-defined]
            console.append(ConsoleEntry("error", message.text, url))  # type: ignore[attr-defined]

    page.on("console", on_console)
    page.on("pageerror", lambda error: console.append(ConsoleEntry("pageerror", str(error), "")))
    return page


def sign_in(page: Page, base: str, name: str) -> None:
    page.goto(f"{base}/")
    field = page.get_by_label("Your name")
    expect(field).to_be_focused()
    field.fill(name)
    field.press("Enter")
    expect(page.get_by_text("Signed in as")).to_contain_text(name)
    expect(page.locator("#quota-text")).to_have_text(f"{QUOTA} of {QUOTA} renders left this hour")


def preview_src(page: Page) -> str:
    """The preview image's URL once it shows a decoded picture."""
    page.wait_for_function(
        "() => { const i = document.getElementById('preview-image');"
        " return !i.hidden && i.src.startsWith('blob:') && i.complete && i.naturalWidth > 0; }"
    )
    return page.locator("#preview-image").get_attribute("src") or ""


def test_create_preview_render_download_and_run_out_of_quota(
    server: Server, browser: Browser, tmp_path: Path
) -> None:
    console: list[ConsoleEntry] = []
    page = open_page(browser, console, 1280, 880)  # the whole page down to the bar, unscrolled
    sign_in(page, server.base, "ada")

    # Create: the form and its live preview.
    text = page.get_by_label("Text", exact=True)
    text.fill("Hello from the browser")
    page.get_by_label("Style").select_option("slide-up")
    page.get_by_label("Duration (frames)").fill("60")
    page.get_by_label("Video size").select_option("640x360")
    expect(page.locator("#frame-output")).to_contain_text("59 of 60")
    first = preview_src(page)
    expect(page.get_by_role("img")).to_have_attribute("alt", re.compile("Hello from the browser"))
    slider = page.locator("#frame")
    slider.focus()
    slider.press("Home")  # scrub to the start, by keyboard
    expect(page.locator("#frame-output")).to_contain_text("0 of 60")
    expect(page.locator("#preview-image")).not_to_have_attribute("src", first)

    # The API's validation message beside the field.
    text.fill("")
    expect(page.locator("#text-error")).to_have_text("text must not be empty")
    expect(text).to_have_attribute("aria-invalid", "true")
    expect(text).to_have_accessible_description(re.compile("text must not be empty"))
    text.fill("Hello from the browser")
    expect(page.locator("#text-error")).to_be_hidden()
    preview_src(page)

    # Render: "Starting..." while the request is held, then the bar to 100 %.
    page.evaluate(
        """() => { window.seen = []; const p = document.getElementById('progress-percent');
        new MutationObserver(() => window.seen.push(p.textContent))
          .observe(p, {childList: true, characterData: true, subtree: true}); }"""
    )
    held: list[Route] = []

    def hold_render_start(route: Route) -> None:
        if route.request.method == "POST":
            held.append(route)
        else:
            route.continue_()

    page.route("**/v1/renders", hold_render_start)
    button = page.get_by_role("button", name=re.compile("Render video|Starting"))
    button.click()
    expect(button).to_have_text("Starting...")
    expect(button).to_be_disabled()
    for _ in range(200):  # the generation is stored first, then the render is asked for
        if held:
            break
        page.wait_for_timeout(50)
    assert len(held) == 1
    expect(button).to_have_text("Starting...")
    held[0].continue_()
    page.unroute("**/v1/renders")
    complete = page.locator("#complete-message")
    expect(complete).to_be_visible()
    expect(complete).to_have_text("Render complete!")
    expect(page.locator("#progress-bar")).to_have_js_property("value", 100)
    expect(page.locator("#progress-percent")).to_have_text("100%")
    expect(button).to_have_text("Render video")
    seen = [int(value.rstrip("%")) for value in page.evaluate("window.seen")]
    assert seen and seen == sorted(seen) and seen[-1] == 100, seen

    # Download through the signed URL, and check the file is the expected MP4.
    link = page.get_by_role("link", name="Download MP4")
    expect(link).not_to_have_attribute("aria-disabled", "true")
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert re.fullmatch(r"render-[0-9A-Z]+\.mp4", download.suggested_filename)
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    probe = ffprobe(saved)
    assert probe["codec_name"] == "h264"
    assert (probe["width"], probe["height"]) == (640, 360)
    assert int(probe["nb_read_frames"]) == 60
    assert abs(float(probe["format"]["duration"]) - 2.0) < 0.1
    assert "mp4" in probe["format"]["format_name"]
    # ... and the inline player can play it.
    page.wait_for_function("() => document.getElementById('player').readyState >= 1")
    assert abs(page.evaluate("document.getElementById('player').duration") - 2.0) < 0.1

    history = page.locator("#history-list > li")
    expect(history.first).to_contain_text("Hello from the browser")
    expect(history.first).to_contain_text("Rendered")
    expect(page.locator("#quota-text")).to_have_text(f"1 of {QUOTA} renders left this hour")
    expect(page.locator("#quota-countdown")).to_contain_text(re.compile(r"back in \d+:\d\d"))

    # A longer render to watch mid-way: time left shown, screenshot kept.
    page.get_by_label("Style").select_option("typewriter")
    text.fill("Each frame of a typewriter differs, so this one takes a few seconds. " * 2)
    page.get_by_label("Font size (px)").fill("64")
    page.get_by_label("Duration (frames)").fill("300")
    page.get_by_label("Video size").select_option("1920x1080")
    slider.press("End")
    expect(page.locator("#frame-output")).to_contain_text("299 of 300")
    preview_src(page)
    page.evaluate("window.scrollTo(0, 0)")
    button.click()
    page.wait_for_function(
        "() => document.getElementById('progress').dataset.status === 'rendering'"
        " && document.getElementById('progress-bar').value >= 30"
        " && / left$/.test(document.getElementById('progress-eta').textContent)",
        timeout=60_000,
    )
    expect(page.locator("#progress-eta")).to_have_text(re.compile(r"^about \d+ (s|min) left$"))
    shot = tmp_path / "web-rendering.png"
    page.screenshot(path=str(shot))
    if os.environ.get("RENDERLAB_SCREENSHOT_DIR"):
        target = Path(os.environ["RENDERLAB_SCREENSHOT_DIR"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target / "web-rendering.png")
    expect(complete).to_be_visible(timeout=60_000)

    # Out of quota: the API's sentence, and when the next slot frees up.
    expect(page.locator("#quota-text")).to_have_text(f"0 of {QUOTA} renders left this hour")
    expect(page.locator("#quota-countdown")).to_contain_text(re.compile(r"next free slot in \d"))
    button.click()
    error = page.get_by_role("alert").filter(has_text="Render quota exceeded")
    expect(error).to_contain_text(
        f"Render quota exceeded. You can render up to {QUOTA} videos per hour. "
        "Please try again later."
    )
    expect(error).to_contain_text(re.compile(r"Next free slot at .+ \(in \d+:\d\d"))

    expected = [(422, "/v1/stills"), (429, "/v1/renders")]
    assert [entry for entry in console if not is_expected(entry, expected)] == []


@pytest.mark.parametrize(("width", "height"), [(360, 740), (1440, 900)])
def test_layout_fits_and_render_button_is_keyboard_reachable(
    server: Server, browser: Browser, width: int, height: int
) -> None:
    console: list[ConsoleEntry] = []
    page = open_page(browser, console, width, height)
    sign_in(page, server.base, f"layout-{width}")
    preview_src(page)

    assert page.evaluate("document.documentElement.scrollWidth") <= width
    button = page.get_by_role("button", name="Render video")
    box = button.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
    editor = page.locator(".editor").bounding_box()
    stage = page.locator(".stage").bounding_box()
    assert editor is not None and stage is not None
    side_by_side = abs(editor["y"] - stage["y"]) < 1 and editor["x"] < stage["x"]
    assert side_by_side == (width >= 960)

    page.locator(".skip-link").focus()  # the page's first stop
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "render-button":
            break
    else:
        pytest.fail("Tab never reached the Render video button")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    assert console == []
