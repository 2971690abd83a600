"""Helpers for the browser test: Debian's chromium driven by Playwright (never a browser
Playwright downloads); the server it talks to comes from :mod:`tests.serve_helpers`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

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
