"""Helpers for the browser test: Debian's chromium driven by Playwright (never a browser
Playwright downloads); the server it talks to comes from :mod:`tests.serve_helpers`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

CHROMIUM = os.environ.get("RENDERLAB_CHROMIUM", "/usr/bin/chromium")
# The flags this machine's chromium needs (docs: no sandbox as root, no calls home).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> str:
    """The chromium binary; a missing one fails the test (CI installs it), never skips it."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"chromium not found at {CHROMIUM}: install Debian's package (apt-get install "
            "chromium) or point RENDERLAB_CHROMIUM at a chromium binary"
        )
    return CHROMIUM


@dataclass(frozen=True)
class ConsoleEntry:
    type: str
    text: str
    url: str


def is_expected(entry: ConsoleEntry, expected: list[tuple[int, str]]) -> bool:
    """A "Failed to load resource" error for a status the test caused on purpose at ``path``."""
    return any(
        entry.text.startswith(f"Failed to load resource: the server responded with a status of {s}")
        and entry.url.split("?")[0].endswith(path)
        for s, path in expected
    )


DESKTOP = (1280, 800)
PHONE = (390, 844)
TIMEOUT_MS = 30_000


def open_page(browser: Browser, console: list[ConsoleEntry], width: int, height: int) -> Page:
    """A fresh browser context at this viewport whose console errors and uncaught exceptions
    are collected in ``console`` (the tests fail on any they did not cause on purpose)."""
    viewport = {"width": width, "height": height}
    context = browser.new_context(viewport=viewport, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            console.append(ConsoleEntry("error", message.text, message.location.get("url", "")))

    page.on("console", on_console)
    page.on("pageerror", lambda error: console.append(ConsoleEntry("pageerror", str(error), "")))
    return page


def unexpected(console: list[ConsoleEntry], expected: list[tuple[int, str]]) -> list[ConsoleEntry]:
    """The console entries a test did not cause on purpose (any pageerror is unexpected)."""
    return [e for e in console if e.type == "pageerror" or not is_expected(e, expected)]


def preview_src(page: Page) -> str:
    """The preview image's URL once it shows a decoded picture."""
    page.wait_for_function(
        "() => { const i = document.getElementById('preview-image');"
        " return !i.hidden && i.src.startsWith('blob:') && i.complete && i.naturalWidth > 0; }"
    )
    return page.locator("#preview-image").get_attribute("src") or ""


# Every visible control a finger may need, with the box that receives the tap (a checkbox's
# label, not the square itself).
SMALL_TAP_TARGETS_JS = """(minimum) => {
  const small = [];
  const nodes = document.querySelectorAll(
    'button, a[href], select, textarea, input:not([type=checkbox]), label.check');
  for (const node of nodes) {
    const box = node.getBoundingClientRect();
    if (!box.width || !box.height || node.closest('[hidden], dialog:not([open])')) continue;
    if (node.classList.contains('skip-link')) continue;
    if (box.height < minimum || box.width < minimum)
      small.push(`${node.tagName.toLowerCase()}#${node.id || node.textContent.trim().slice(0, 20)}`
        + ` ${Math.round(box.width)}x${Math.round(box.height)}`);
  }
  return small;
}"""


def small_tap_targets(page: Page, minimum: int = 44) -> list[str]:
    """Visible controls smaller than ``minimum`` CSS px either way (WCAG 2.5.5's 44 px)."""
    return page.evaluate(SMALL_TAP_TARGETS_JS, minimum)


def in_viewport(page: Page, selector: str) -> bool:
    """Whether the element is wholly inside the visible part of the page."""
    return page.evaluate(
        """(s) => { const b = document.querySelector(s).getBoundingClientRect();
        return b.height > 0 && b.top >= 0 && b.bottom <= window.innerHeight; }""",
        selector,
    )
