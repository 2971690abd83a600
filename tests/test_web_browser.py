"""The web page in a real browser: Debian's chromium, driven by Playwright, against a real
``renderlab serve`` (embedded workers, SQLite, local storage), by visible labels and roles.

The journey (sign in, type, pick 9:16 and WebM, render, watch progress, download, cancel one,
delete one, run out of quota) runs at a desktop (1280x800) and a phone (390x844) viewport, each
as its own user. The server runs with ``RENDERLAB_RENDERS_PER_HOUR=2`` so running out of quota
takes two complete renders (a cancelled one gives its slot back). With
``RENDERLAB_SCREENSHOT_DIR`` set, the screenshots of ``docs/web.md`` are written there.
Chromium missing is a failure, never a skip; so is any JavaScript error on the page.

The router's own behaviour (types, caching, CSP, identity mode), ``POST /v1/stills`` and
``GET /v1/fonts`` are checked first without a browser.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from renderlab.api import create_app
from renderlab.api.routes import stills
from renderlab.config import Settings
from renderlab.db import Database
from renderlab.limits import Limits
from renderlab.render.fonts import find_family
from renderlab.services import Services
from tests.api_helpers import bearer
from tests.render_helpers import ffprobe
from tests.serve_helpers import Server, serve
from tests.web_helpers import (
    CHROMIUM_ARGS,
    DESKTOP,
    PHONE,
    ConsoleEntry,
    in_viewport,
    open_page,
    preview_src,
    require_chromium,
    small_tap_targets,
    unexpected,
)

QUOTA = 2
X = "\u00d7"  # the multiplication sign the page writes sizes with
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


def test_fonts_lists_the_installed_families_the_renderer_draws(
    tmp_path: Path, sqlite_template: Path
) -> None:
    client = _client(tmp_path, sqlite_template)
    response = client.get("/v1/fonts")
    assert response.status_code == 200
    families = [item["family"] for item in response.json()["items"]]
    assert {"Inter", "Roboto", "Open Sans"} <= set(families)
    assert families == sorted(families) and len(set(families)) == len(families)
    for family in families:  # each is drawn as itself, not as the Inter fallback
        face = find_family(family)
        assert face is not None and face.name == family, family
    assert "Comic Sans MS" not in families


# -- the page in chromium -------------------------------------------------------------------

ALPHA_WARNING = (
    "H.264 has no transparency: the background will be black; pick WebM or ProRes to keep it."
)
# Refusals the journey causes on purpose (the browser logs each as a failed resource).
EXPECTED = [(422, "/v1/stills"), (422, "/v1/generations")]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("web") / "data"
    env = {"RENDERLAB_RENDERS_PER_HOUR": str(QUOTA), "RENDERLAB_MAX_CONCURRENT_RENDERS": "1"}
    with serve(data, RENDERLAB_WORKERS="1", **env) as running:
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


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[[list[ConsoleEntry], tuple[int, int]], Page]]:
    """Opens pages at a viewport (see :func:`open_page`); their contexts close after the test,
    so live streams and players of one test do not load the next one."""
    opened: list[Page] = []

    def make(console: list[ConsoleEntry], viewport: tuple[int, int]) -> Page:
        page = open_page(browser, console, *viewport)
        opened.append(page)
        return page

    yield make
    for page in opened:
        page.context.close()


def sign_in(page: Page, base: str, name: str) -> None:
    page.goto(f"{base}/")
    field = page.get_by_label("Your name")
    expect(field).to_be_focused()
    field.fill(name)
    field.press("Enter")
    expect(page.get_by_text("Signed in as")).to_contain_text(name)
    expect(page.locator("#quota-text")).to_have_text(f"{QUOTA} of {QUOTA} renders left this hour")


def screenshot(page: Page, tmp_path: Path, name: str, full_page: bool = False) -> None:
    """Kept in tmp_path, and in RENDERLAB_SCREENSHOT_DIR when set (docs/web.md's pictures)."""
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=full_page)
    if os.environ.get("RENDERLAB_SCREENSHOT_DIR"):
        target = Path(os.environ["RENDERLAB_SCREENSHOT_DIR"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target / name)


def render_rows(page: Page, text: str) -> Locator:
    """The render rows of the animation whose text is ``text``, newest first."""
    item = page.locator("#history-list > li").filter(has_text=text)
    return item.get_by_role("list", name=re.compile("Renders of")).get_by_role("listitem")


def type_a_portrait_webm(page: Page, text: str) -> None:
    """Prompt first, then the props: 9:16, 2 s, transparent, WebM, small size."""
    prompt = page.get_by_label("Prompt")
    text_box = page.get_by_label("Text", exact=True)
    prompt_box, text_box_box = prompt.bounding_box(), text_box.bounding_box()
    assert prompt_box and text_box_box and prompt_box["y"] < text_box_box["y"]  # its place: top
    prompt.fill("An intro card for my cooking channel")
    text_box.fill(text)
    page.get_by_label("Style").select_option("slide-up")
    page.get_by_label("Format").select_option(label=f"9:16 (1080 {X} 1920)")
    frame = page.locator("#preview-frame")
    page.wait_for_function(
        "() => { const b = document.getElementById('preview-frame').getBoundingClientRect();"
        " return Math.abs(b.height / b.width - 1920 / 1080) < 0.02; }"
    )
    expect(frame).to_have_attribute("data-format", "1080x1920")
    page.get_by_label("Duration (seconds)").fill("2")
    expect(page.locator("#duration-hint")).to_contain_text("60 frames")
    # the slider stays on the last frame, counted from 1 as a person counts (it said "59 of 60")
    expect(page.locator("#frame-output")).to_have_text("60 of 60 (1.97 s)")
    page.get_by_label("Duration (seconds)").fill("25")  # refused: the slider stays as it was
    expect(page.locator("#duration-hint")).to_have_text("1 to 20 s at 30 fps")
    expect(page.locator("#frame-output")).to_have_text("60 of 60 (1.97 s)")
    page.get_by_label("Duration (seconds)").fill("2")
    expect(page.locator("#duration-hint")).to_contain_text("60 frames")
    expect(page.get_by_label("Frame rate")).to_have_count(0)  # one choice is no choice
    page.get_by_label("Transparent background").check()
    warning = page.get_by_text(ALPHA_WARNING)
    expect(warning).to_be_visible()  # said before Render is pressed
    page.get_by_label("File type").select_option(label="WebM (VP9, keeps transparency)")
    expect(warning).to_be_hidden()
    size = page.get_by_label("Video size")
    size.select_option("small")
    expect(size.locator("option:checked")).to_have_text(f"Small (360 {X} 640)")
    preview_src(page)
    page.wait_for_function(  # the new still, drawn at the format's shape, replaces the 16:9 one
        "() => { const i = document.getElementById('preview-image');"
        " return i.complete && i.naturalWidth > 0"
        " && i.naturalHeight * 1080 === i.naturalWidth * 1920"
        " && !document.getElementById('preview-frame').classList.contains('stale'); }"
    )
    expect(page.locator("#format-error")).to_be_hidden()


def render_and_watch(page: Page, text: str, tmp_path: Path) -> None:
    """Render: the requests carry the format, codec and frames; the bar only moves forward."""
    page.evaluate(
        """() => { window.seen = []; const p = document.getElementById('progress-percent');
        new MutationObserver(() => window.seen.push(p.textContent))
          .observe(p, {childList: true, characterData: true, subtree: true}); }"""
    )
    button = page.get_by_role("button", name="Render video")
    with (
        page.expect_request(
            lambda r: r.method == "POST" and r.url.endswith("/v1/generations")
        ) as generation,
        page.expect_request(
            lambda r: r.method == "POST" and r.url.endswith("/v1/renders")
        ) as render,
    ):
        button.click()
    props = generation.value.post_data_json["animation_props"]
    assert (props["width"], props["height"], props["duration_in_frames"]) == (1080, 1920, 60)
    assert "background_color" not in props and props["text"] == text
    assert generation.value.post_data_json["prompt"] == "An intro card for my cooking channel"
    sent = render.value.post_data_json
    assert (sent["codec"], sent["width"], sent["height"]) == ("vp9", 360, 640)

    complete = page.locator("#complete-message")
    expect(complete).to_have_text("Render complete!")
    # The player shows the poster before it plays: a fade-in's first frame is empty.
    expect(page.locator("#player")).to_have_attribute("poster", re.compile(r"/files/posters/"))
    expect(page.locator("#progress-for")).to_contain_text(text)
    expect(page.locator("#progress-percent")).to_have_text("100%")
    expect(page.locator("#progress-eta")).to_have_text(re.compile(r"^Done in about \d+ (s|min)$"))
    seen = [int(value.rstrip("%")) for value in page.evaluate("window.seen")]
    assert seen and seen == sorted(seen) and seen[-1] == 100, seen

    link = page.get_by_role("link", name="Download WebM", exact=True)
    expect(link).not_to_have_attribute("aria-disabled", "true")
    player = page.locator("#player")
    expect(player).to_be_visible()  # a WebM plays in the page
    page.wait_for_function("() => document.getElementById('player').readyState >= 1")
    assert player.evaluate("v => v.error === null && v.videoWidth === 360")
    with page.expect_download() as info:
        link.click()
    saved = tmp_path / info.value.suggested_filename
    assert saved.name.endswith("-360x640.webm"), saved.name
    info.value.save_as(saved)
    probe = ffprobe(saved)
    assert probe["codec_name"] == "vp9" and (probe["width"], probe["height"]) == (360, 640)
    assert int(probe["nb_read_frames"]) == 60

    row = render_rows(page, text).first
    expect(row).to_contain_text("Ready")
    expect(row).to_contain_text(f"WebM · 360 {X} 640")
    # its "seconds ago" is a <time> of the render's creation, which the list says again as it
    # changes (a row drawn later read as newer than the one above it)
    thumb = row.locator(".thumb").bounding_box()  # the poster's box in the render's shape
    assert thumb is not None and abs(thumb["width"] / thumb["height"] - 360 / 640) < 0.05, thumb
    when = row.locator("time.ago")
    expect(when).to_have_count(1)
    assert when.get_attribute("datetime") == render.value.response().json()["created_at"]
    poster = row.get_by_role("img", name=re.compile("Poster of"))
    poster.scroll_into_view_if_needed()  # posters load lazily, as a person scrolls to them
    expect(poster).to_have_js_property("complete", True)
    expect(poster).to_be_visible()
    assert poster.evaluate("i => i.naturalWidth * 16 == i.naturalHeight * 9 && i.naturalWidth > 0")


def refusal_clears_the_panel(page: Page) -> None:
    """A refused render leaves no "Render complete" of the previous animation, and the field's
    message is the only one (no second red box); fixing the field clears it."""
    size = page.get_by_label("Font size (px)")
    size.fill("5")
    error = page.locator("#font_size-error")
    expect(error).to_have_text("Pick a font size from 12 to 200 px.")
    page.get_by_role("button", name="Render video").click()
    expect(page.locator("#complete-message")).to_be_hidden()
    expect(page.locator("#progress")).to_be_hidden()
    expect(error).to_have_text("Pick a font size from 12 to 200 px.")
    expect(size).to_be_focused()
    expect(page.locator("#form-error")).to_be_hidden()
    expect(page.locator("#render-error")).to_be_hidden()
    size.fill("48")
    expect(error).to_be_hidden()
    preview_src(page)


def preview_stays_in_view(page: Page, tmp_path: Path, shot: str | None) -> None:
    """Editing a field low in the form keeps the preview on screen; every control is a
    44 px tap target; nothing scrolls sideways."""
    page.evaluate("window.scrollTo(0, 0)")
    field = page.get_by_label("Font size (px)")
    field.scroll_into_view_if_needed()  # on a phone: scrolls the form under the preview
    field.focus()
    assert in_viewport(page, "#preview-frame")
    assert in_viewport(page, "#font_size")
    assert small_tap_targets(page) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]
    if shot:
        screenshot(page, tmp_path, shot)
    page.evaluate("window.scrollTo(0, 0)")


def cancel_a_long_render(page: Page, tmp_path: Path, shot: str | None) -> str:
    """A long render watched mid-way (time left shown) and cancelled: "Cancelled" everywhere."""
    text = "Each frame of a typewriter differs, so this one takes a while to render. " * 2
    page.get_by_label("Text", exact=True).fill(text)
    page.get_by_label("Style").select_option("typewriter")
    page.get_by_label("Duration (seconds)").fill("20")
    page.get_by_label("Video size").select_option("full")
    preview_src(page)
    page.get_by_role("button", name="Render video").click()
    page.wait_for_function(
        "() => document.getElementById('progress').dataset.status === 'rendering'"
        " && / left$/.test(document.getElementById('progress-eta').textContent)",
        timeout=90_000,
    )
    expect(page.locator("#progress-eta")).to_have_text(re.compile(r"^about \d+ (s|min) left$"))
    if shot:
        screenshot(page, tmp_path, shot, full_page=True)
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#progress-title")).to_have_text("Cancelled")
    page.wait_for_function("() => document.activeElement.id === 'progress-title'")  # not lost
    row = render_rows(page, text.strip()[:40]).first
    expect(row.locator(".badge")).to_have_text("Cancelled")
    expect(page.locator("#quota-text")).to_have_text(f"1 of {QUOTA} renders left this hour")
    return text.strip()[:40]


def delete_a_render(page: Page, text: str) -> None:
    """Delete asks first: Keep keeps it, Delete removes it (DELETE /v1/renders/{id}, 204)."""
    rows = render_rows(page, text)
    expect(rows).to_have_count(1)
    rows.first.get_by_role("button", name=re.compile("^Delete")).click()
    dialog = page.get_by_role("dialog", name="Delete this render?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Keep").click()
    expect(dialog).to_be_hidden()
    expect(rows).to_have_count(1)
    rows.first.get_by_role("button", name=re.compile("^Delete")).click()
    with page.expect_response(lambda r: r.request.method == "DELETE") as answer:
        dialog.get_by_role("button", name="Delete").click()
    assert answer.value.status == 204
    expect(rows).to_have_count(0)
    expect(page.locator("#history-status")).to_have_text("Deleted.")
    # Focus stays in the history (its button is gone), not on the page's <body>.
    page.wait_for_function(
        "() => document.activeElement.closest('#history-list, #history-title') !== null"
    )


def history_download_downloads(page: Page, text: str, tmp_path: Path) -> None:
    """New animation clears the form and the panel; a history Download saves the file and
    leaves the panel alone."""
    page.get_by_role("button", name="New animation").click()
    expect(page.get_by_label("Prompt")).to_have_value("")
    expect(page.get_by_label("Text", exact=True)).to_have_value("Hello, renderlab")
    expect(page.locator("#progress")).to_be_hidden()
    row = render_rows(page, text).first
    with page.expect_download() as info:
        row.get_by_role("link", name=re.compile("^Download")).click()
    assert info.value.suggested_filename.endswith("-360x640.webm")
    path = tmp_path / "from-history.webm"
    info.value.save_as(path)
    assert ffprobe(path)["codec_name"] == "vp9"
    expect(page.locator("#progress")).to_be_hidden()


def run_out_of_quota(page: Page) -> None:
    """The second complete render uses the quota up: Render is off, and the page says why."""
    page.get_by_label("Duration (seconds)").fill("1")
    page.get_by_label("Video size").select_option("small")
    button = page.get_by_role("button", name="Render video")
    button.click()
    expect(page.locator("#complete-message")).to_be_visible(timeout=90_000)
    expect(page.locator("#quota-text")).to_have_text(f"0 of {QUOTA} renders left this hour")
    expect(page.locator("#quota-countdown")).to_contain_text(
        re.compile(r"next free slot in \d+ (h|min|s)\b")  # a time left, not "6:43"
    )
    expect(button).to_be_disabled()
    expect(page.locator("#render-hint")).to_contain_text("No renders left")


def delete_an_animation(page: Page, text: str) -> None:
    item = page.locator("#history-list > li").filter(has_text=text)
    expect(item).to_have_count(1)
    item.get_by_role("button", name=re.compile("^Delete animation")).click()
    page.get_by_role("dialog", name="Delete this animation?").get_by_role(
        "button", name="Delete"
    ).click()
    expect(item).to_have_count(0)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_journey_type_pick_render_download_cancel_delete_run_out(
    server: Server, new_page: Callable[..., Page], tmp_path: Path, viewport: tuple[int, int]
) -> None:
    console: list[ConsoleEntry] = []
    page = new_page(console, viewport)
    name = "desktop" if viewport == DESKTOP else "phone"
    sign_in(page, server.base, f"journey-{name}")
    text = f"Hello from the {name}"
    type_a_portrait_webm(page, text)
    preview_stays_in_view(page, tmp_path, "web-phone.png" if name == "phone" else None)
    render_and_watch(page, text, tmp_path)
    refusal_clears_the_panel(page)
    shot = "web-desktop.png" if name == "desktop" else None
    cancelled = cancel_a_long_render(page, tmp_path, shot)
    delete_a_render(page, cancelled)
    history_download_downloads(page, text, tmp_path)
    run_out_of_quota(page)
    delete_an_animation(page, text)
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport[0]
    assert unexpected(console, EXPECTED) == []


def test_each_file_type_is_shown_as_a_browser_can(
    server: Server, new_page: Callable[..., Page], tmp_path: Path
) -> None:
    """A GIF is shown as an image and ProRes, which no browser decodes, by a line saying where
    it plays: both were put in the video player, which sat black at 0:00 (fresh-eyes run).
    MP4 and WebM play in the player (the journey's WebM: ``render_and_watch``)."""
    console: list[ConsoleEntry] = []
    page = new_page(console, DESKTOP)
    sign_in(page, server.base, "file-types")
    page.get_by_label("Text", exact=True).fill("Shown as it can be")
    page.get_by_label("Duration (seconds)").fill("1")
    page.get_by_label("Video size").select_option("small")
    page.get_by_label("Transparent background").check()
    player, gif, elsewhere = (
        page.locator(f"#{i}") for i in ("player", "gif-preview", "no-preview")
    )
    for codec, name in (("gif", "GIF"), ("prores", "MOV")):
        page.get_by_label("File type").select_option(codec)
        lost = page.locator("#alpha-warning")  # before Render: what the file type loses
        if codec == "gif":
            expect(lost).to_have_text(re.compile("^GIF transparency is on or off: .*pick WebM.$"))
        else:
            expect(lost).to_be_hidden()  # ProRes 4444 keeps the alpha
        page.get_by_role("button", name="Render video").click()
        link = page.get_by_role("link", name=f"Download {name}", exact=True)
        expect(link).not_to_have_attribute("aria-disabled", "true", timeout=60_000)
        expect(player).to_be_hidden()
        if codec == "gif":
            expect(gif).to_be_visible()
            expect(gif).to_have_js_property("complete", True)
            assert gif.evaluate("i => i.naturalWidth > 0 && i.alt.startsWith('The GIF of')")
            # white text over a transparent GIF: on the preview's checkerboard, not the card
            assert gif.evaluate("i => getComputedStyle(i).backgroundImage.includes('gradient')")
            expect(page.locator("#render-warnings")).to_contain_text("edges are hard")
            expect(page.locator("#render-warnings")).not_to_contain_text("_")
            expect(elsewhere).to_be_hidden()
        else:
            expect(elsewhere).to_be_visible()
            expect(elsewhere).to_contain_text("not in browsers: download it")
            expect(gif).to_be_hidden()
        screenshot(page, tmp_path, f"web-{codec}-done.png", full_page=True)
    # Edit brings the animation back with the file type it was last rendered as (it came back
    # as MP4, with the H.264 transparency warning: a fresh-eyes run).
    page.get_by_label("File type").select_option("h264")
    page.get_by_role("button", name="Edit “Shown as it can be”").first.click()
    expect(page.get_by_label("File type")).to_have_value("prores")
    expect(page.locator("#alpha-warning")).to_be_hidden()
    assert unexpected(console, EXPECTED) == []


def test_a_render_refused_while_another_runs_says_so_and_keeps_following_it(
    server: Server, new_page: Callable[..., Page]
) -> None:
    """The server runs one render per user at once: a second Render is refused (429
    too_many_concurrent_renders) in plain words, costs no quota, and the panel keeps
    following the running render, which can still be cancelled."""
    console: list[ConsoleEntry] = []
    page = new_page(console, DESKTOP)
    sign_in(page, server.base, "busy")
    page.get_by_label("Text", exact=True).fill("A long typewriter render " * 4)
    page.get_by_label("Style").select_option("typewriter")
    page.get_by_label("Duration (seconds)").fill("20")
    page.get_by_label("Video size").select_option("full")
    preview_src(page)
    button = page.get_by_role("button", name="Render video")
    button.click()
    expect(page.locator("#progress-title")).to_have_text(re.compile("Waiting to start|Rendering"))
    expect(page.locator("#quota-text")).to_have_text(f"1 of {QUOTA} renders left this hour")
    shown = page.locator("#progress").get_attribute("data-render-id")
    with page.expect_response(lambda r: r.url.endswith("/v1/renders")) as refused:
        button.click()
    assert refused.value.status == 429
    assert refused.value.json()["error"]["code"] == "too_many_concurrent_renders"
    expect(page.locator("#render-error")).to_have_text(re.compile("^You already have as many"))
    expect(page.locator("#render-error")).not_to_contain_text("_")
    expect(page.locator("#progress")).to_be_visible()
    expect(page.locator("#progress")).to_have_attribute("data-render-id", shown or "")
    expect(page.locator("#quota-text")).to_have_text(f"1 of {QUOTA} renders left this hour")
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#progress-title")).to_have_text("Cancelled")
    page.wait_for_function("() => document.activeElement.id === 'progress-title'")  # not lost
    expect(page.locator("#render-error")).to_be_hidden()  # "wait for one to finish": it has
    expect(page.locator("#quota-text")).to_have_text(f"{QUOTA} of {QUOTA} renders left this hour")
    assert unexpected(console, [(429, "/v1/renders")]) == []


@pytest.fixture(scope="module")
def short_lived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose outputs expire after 1 s and whose renders time out after 1 s, the
    least the setting takes (the cost budget raised so a long render is still accepted)."""
    data = tmp_path_factory.mktemp("short") / "data"
    env = {
        "RENDERLAB_OUTPUT_TTL_S": "1",
        "RENDERLAB_RENDER_TIMEOUT_MS": "1000",
        "RENDERLAB_RENDER_COST_BUDGET_MS": "600000",
    }
    with serve(data, RENDERLAB_WORKERS="1", RENDERLAB_RENDERS_PER_HOUR="5", **env) as running:
        yield running


def test_history_says_timed_out_and_expired(
    short_lived: Server, new_page: Callable[..., Page]
) -> None:
    """A render past its time limit ends as "Timed out" in the panel and the history; a
    complete one whose file retention deleted says "Expired", offers no download and shows
    no poster (Refresh, as a person would, until the server has expired it)."""
    console: list[ConsoleEntry] = []
    page = new_page(console, PHONE)
    page.goto(f"{short_lived.base}/")
    page.get_by_label("Your name").fill("short")
    page.get_by_label("Your name").press("Enter")
    text_box = page.get_by_label("Text", exact=True)
    # The longest text the form takes, typed over 20 s at 1080p: 2.4 s of work on a quiet
    # machine (a 100-character one finishes inside the limit).
    text_box.fill(("Too long for two seconds " * 20).strip())
    page.get_by_label("Style").select_option("typewriter")
    page.get_by_label("Duration (seconds)").fill("20")
    page.get_by_label("Video size").select_option("full")
    preview_src(page)
    button = page.get_by_role("button", name="Render video")
    button.click()
    expect(page.locator("#progress-title")).to_have_text("Timed out", timeout=90_000)
    expect(page.locator("#failed-message")).to_be_visible()
    slow = render_rows(page, "Too long for two seconds").first
    expect(slow.locator(".badge")).to_have_text("Timed out")

    text_box.fill("Soon gone")
    page.get_by_label("Duration (seconds)").fill("1")
    page.get_by_label("Video size").select_option("small")
    button.click()
    expect(page.locator("#complete-message")).to_be_visible(timeout=90_000)
    page.wait_for_function(
        """() => { const b = document.querySelector('[data-render-id] .badge-muted');
        if (b && b.textContent === 'Expired') return true;
        document.getElementById('history-refresh').click(); return false; }""",
        polling=1000,
        timeout=60_000,
    )
    row = render_rows(page, "Soon gone").first
    expect(row.locator(".badge")).to_have_text("Expired")
    expect(row.get_by_role("link", name=re.compile("^Download"))).to_have_count(0)
    expect(row.get_by_role("img")).to_have_count(0)
    expect(slow.locator(".badge")).to_have_text("Timed out")  # after the reload too
    # A Refresh just before the expiry lists the poster, and the file may be gone when the
    # browser fetches it: a 404 the page shows as the placeholder (history.js), nothing else.
    gone = row.get_attribute("data-render-id")
    assert unexpected(console, [(404, f"/files/posters/{gone}.png")]) == []


def test_form_speaks_plainly_and_keeps_what_was_typed(
    server: Server, new_page: Callable[..., Page]
) -> None:
    """Colour names sent as hex; one friendly message per field, cleared when fixed, not
    stretching its neighbour; the font picker lists the server's families and warns of a
    fallback; seconds sent as frames; the colour kept through Transparent and a reload."""
    console: list[ConsoleEntry] = []
    page = new_page(console, DESKTOP)
    sign_in(page, server.base, "form")
    preview_src(page)

    colour = page.get_by_label("Text colour", exact=True)
    with page.expect_request(lambda r: r.url.endswith("/v1/stills")) as still:
        colour.fill("orange")
    assert still.value.post_data_json["animation_props"]["color"] == "#FFA500"
    expect(page.locator("#color-hint")).to_have_text("Sent as #FFA500")

    neighbour = page.get_by_label("Duration (seconds)")  # the same row
    before = neighbour.bounding_box()
    colour.fill("not a colour")
    error = page.locator("#color-error")
    expect(error).to_have_text("Type a colour like #FF8800 or a name like orange.")
    expect(colour).to_have_attribute("aria-invalid", "true")
    expect(colour).to_have_accessible_description(re.compile("Type a colour like"))
    expect(page.locator("#form-error")).to_be_hidden()  # no second red box
    assert neighbour.bounding_box() == before  # a message does not stretch its neighbour
    page.get_by_label("Text", exact=True).fill("")
    text_error = page.locator("#text-error")
    expect(text_error).to_have_text("Type the text to animate (spaces alone draw nothing).")
    assert "animation_props" not in page.locator("#props-form").inner_text()
    colour.fill("#00FF88")
    expect(error).to_be_hidden()  # cleared at once, while the other field keeps its message
    expect(text_error).to_be_visible()
    page.get_by_label("Text", exact=True).fill("Fonts")
    expect(text_error).to_be_hidden()

    expect(page.locator("#font-list option[value='Roboto']")).to_have_count(1)
    font = page.get_by_label("Font", exact=True)
    font.fill("Comic Sans")
    warning = page.locator("#font_family-warning")
    expect(warning).to_have_text(
        "“Comic Sans” is not installed on this server: the video will use Inter."
    )
    font.fill("Roboto")
    expect(warning).to_be_hidden()

    with page.expect_request(lambda r: r.url.endswith("/v1/stills")) as still:
        page.get_by_label("Duration (seconds)").fill("2.5")
    assert still.value.post_data_json["animation_props"]["duration_in_frames"] == 75

    page.get_by_label("Background", exact=True).fill("teal")
    page.get_by_label("Transparent background").check()
    expect(page.get_by_text(ALPHA_WARNING)).to_be_visible()
    preview_src(page)
    page.reload()
    expect(page.get_by_label("Transparent background")).to_be_checked()
    page.get_by_label("Transparent background").uncheck()
    expect(page.get_by_label("Background", exact=True)).to_have_value("TEAL")
    expect(page.locator("#background_color-hint")).to_have_text("Sent as #008080")
    expect(page.get_by_label("Font", exact=True)).to_have_value("Roboto")
    preview_src(page)
    assert unexpected(console, EXPECTED) == []


@pytest.mark.parametrize(("width", "height"), [(360, 740), (1440, 900)])
def test_layout_fits_and_render_button_is_keyboard_reachable(
    server: Server, new_page: Callable[..., Page], width: int, height: int
) -> None:
    console: list[ConsoleEntry] = []
    page = new_page(console, (width, height))
    sign_in(page, server.base, f"layout-{width}")
    preview_src(page)

    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert small_tap_targets(page) == []
    button = page.get_by_role("button", name="Render video")
    box = button.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
    editor = page.locator(".editor").bounding_box()
    stage = page.locator(".stage").bounding_box()
    assert editor is not None and stage is not None
    side_by_side = abs(editor["y"] - stage["y"]) < 1 and editor["x"] < stage["x"]
    assert side_by_side == (width >= 960)
    if width < 960:
        assert stage["y"] < editor["y"]  # the preview first on a phone

    # Signing in with Enter hid the form focus was in: it went to the page, not to the editor.
    assert page.evaluate("document.activeElement.id") == "prompt"
    page.locator(".skip-link").focus()  # the page's first stop
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "render-button":
            break
    else:
        pytest.fail("Tab never reached the Render video button")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    page.keyboard.press("Enter")  # Render is disabled while it starts: focus goes on, not away
    page.wait_for_function("() => document.activeElement.id === 'progress-title'")
    expect(page.locator("#complete-message")).to_be_visible()  # nothing left running
    # Enter in a one-line field of the editor renders too, as a form's Enter would submit it.
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/v1/renders")):
        page.get_by_label("Duration (seconds)").press("Enter")
    expect(page.locator("#complete-message")).to_be_visible()
    assert unexpected(console, []) == []
