"""A real ``renderlab serve`` in a subprocess, as a user starts it: a fresh data dir, a free
loopback port, and a clean stop with SIGINT (the user's Ctrl-C), for the end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api_helpers import free_socket

ROOT = Path(__file__).resolve().parent.parent

# Settings that would point a zero-setup serve at the developer's own database, storage,
# broker or identity provider instead of its data dir and its own tokens.
_OUTSIDE_SETTINGS = (
    "RENDERLAB_DATABASE_URL",
    "RENDERLAB_STORAGE_URL",
    "RENDERLAB_BROKER_URL",
    "RENDERLAB_JWKS_URL",
    "RENDERLAB_JWT_ISSUER",
    "RENDERLAB_PUBLIC_URL",
    "RENDERLAB_AUTH",
    "RENDERLAB_JWT_SECRET",
    "RENDERLAB_JWT_AUDIENCE",
)


def renderlab(*args: str) -> list[str]:
    """The CLI run by this interpreter, so it is the checkout's code whatever is on PATH."""
    return [sys.executable, "-m", "renderlab", *args]


def serve_env(data_dir: Path, **env: str) -> dict[str, str]:
    """This process's environment with only ``data_dir`` and ``env`` configuring renderlab."""
    environ = {name: value for name, value in os.environ.items() if name not in _OUTSIDE_SETTINGS}
    return {**environ, "RENDERLAB_DATA_DIR": str(data_dir), **env}


@dataclass
class Server:
    base: str
    port: int
    env: dict[str, str]
    """The server's environment, for CLI commands (``renderlab token``) that must agree with it."""
    process: subprocess.Popen[str]
    stderr: str = ""
    """What serve wrote, once it has stopped (the pipe is read only then)."""
    stdout: str = ""
    """The same for its standard output."""


@contextmanager
def serve(data_dir: Path, *args: str, **env: str) -> Iterator[Server]:
    """``renderlab serve [args]`` on a free loopback port, healthy when yielded; stopped with
    SIGINT and killed if it has not exited 30 s later."""
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    environ = serve_env(data_dir, **env)
    process = subprocess.Popen(
        renderlab("serve", "--port", str(port), "--no-access-log", *args),
        env=environ,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    server = Server(f"http://127.0.0.1:{port}", port, environ, process)
    try:
        _wait_healthy(server)
        yield server
    finally:
        process.send_signal(signal.SIGINT)
        try:
            stdout, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
        server.stderr = stderr or ""
        server.stdout = stdout or ""


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


def small_render(
    client: Any, headers: dict[str, str], width: int = 160, height: int = 90
) -> dict[str, Any]:
    """Store a 30-frame generation and start its render at ``width`` x ``height``: the
    render object the start answered with."""
    from tests.factories import PROPS

    generation = client.post(
        "/v1/generations",
        json={"animation_props": {**PROPS, "duration_in_frames": 30}},
        headers=headers,
    ).json()
    started = client.post(
        "/v1/renders",
        json={"generation_id": generation["id"], "width": width, "height": height},
        headers=headers,
    )
    assert started.status_code == 202, started.text
    result: dict[str, Any] = started.json()
    return result
