"""Helpers for the browser test: a real ``renderlab serve`` on a free port, and Debian's chromium
driven by Playwright (never a browser Playwright downloads)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.api_helpers import free_socket

ROOT = Path(__file__).resolve().parent.parent
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


@dataclass
class Server:
    base: str
    process: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)


@contextmanager
def serve(data_dir: Path, **env: str) -> Iterator[Server]:
    """``renderlab serve`` on a free loopback port with a fresh data dir; stopped with SIGINT."""
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    environ = {**os.environ, "RENDERLAB_DATA_DIR": str(data_dir), **env}
    for name in ("RENDERLAB_DATABASE_URL", "RENDERLAB_STORAGE_URL", "RENDERLAB_BROKER_URL"):
        environ.pop(name, None)
    for name in ("RENDERLAB_JWKS_URL", "RENDERLAB_JWT_ISSUER", "RENDERLAB_PUBLIC_URL"):
        environ.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "renderlab", "serve", "--port", str(port), "--no-access-log"],
        env=environ,
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    server = Server(f"http://127.0.0.1:{port}", process)
    try:
        _wait_healthy(server)
        yield server
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
        server.log.append(stderr or "")


def _wait_healthy(server: Server) -> None:
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=server.base, timeout=5) as client:
        while True:
            try:
                if client.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if server.process.poll() is not None:
                pytest.fail(f"renderlab serve exited: {server.process.stderr.read()}")  # type: ignore[union-attr]
            if time.monotonic() > deadline:
                pytest.fail("renderlab serve did not come up within 60 s")
            time.sleep(0.1)


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
