"""A full disk under the storage, seen from the user's side of a real ``renderlab serve``.

`tests/test_storage_local.py` shows a full disk (RLIMIT_FSIZE) keeps old objects and leaves no
debris, and `tests/test_embedded.py` that unwritable storage fails the render and refunds; this
one puts the storage on a real 8 KiB tmpfs (ENOSPC, not EPERM) and checks what the HTTP client
sees: the render ends ``failed`` with the storage sentence over SSE, the quota slot comes back,
nothing half-written is left on the full filesystem, and the server keeps answering.

The second test puts the whole data dir (the SQLite database, its WAL and the videos) on one
small tmpfs and fills it while a render waits: no state can be written at all then, so writes
are refused without a trace, the accepted render waits instead of being lost, reads and
``/healthz`` keep answering, and once space is freed everything completes.

Mounting needs root, which the CI machine has: without it the tests fail, they do not skip.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from renderlab.pipeline.failures import STORAGE_FAILED

ROOT = Path(__file__).resolve().parent.parent


def mounted_tmpfs(mount: Path, size: str) -> Iterator[Path]:
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    yield from mounted_tmpfs(tmp_path / "small", "8k")


@pytest.fixture
def data_disk(tmp_path: Path) -> Iterator[Path]:
    """Room for the database and a few videos; the test fills the rest."""
    yield from mounted_tmpfs(tmp_path / "data-disk", "16m")


def serve(tmp_path: Path, **env: str) -> Iterator[str]:
    """A real ``renderlab serve`` (one embedded worker) with ``env`` on top; its base URL.

    Not ``tests.serve_helpers.serve``: that reads serve's stderr from a pipe only once it has
    stopped, and a full disk makes serve log tracebacks (about 37 KB in the data-dir test), near
    the 64 KiB at which an unread pipe blocks the server. Here the log goes to a file."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "RENDERLAB_DATA_DIR": str(tmp_path / "data"),
        "RENDERLAB_AUTH": "dev",  # sign-in with a name, and a fixed secret
        "RENDERLAB_JWT_SECRET": "disk-full-secret-" + "d" * 40,
        "RENDERLAB_WORKERS": "1",
        **env,
    }
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [str(ROOT / ".venv/bin/renderlab"), "serve", "--port", str(port), "--no-access-log"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(30)
        log.close()


@pytest.fixture
def server(tmp_path: Path, full_disk: Path) -> Iterator[str]:
    yield from serve(tmp_path, RENDERLAB_STORAGE_URL=f"file://{full_disk}")


@pytest.fixture
def data_server(tmp_path: Path, data_disk: Path) -> Iterator[str]:
    yield from serve(tmp_path, RENDERLAB_DATA_DIR=str(data_disk / "data"))


def fill(path: Path, block: int = 1024) -> None:
    """Write until the filesystem says ENOSPC: the disk is now full to the last byte."""
    for size in (block, 1):  # big blocks first (fast), then single bytes for the last one
        with path.open("ab", buffering=0) as out:
            try:
                while True:
                    out.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC


def test_full_storage_disk_fails_the_render_refunds_and_keeps_serving(
    server: str, full_disk: Path
) -> None:
    fill(full_disk / "filler")  # after start: serve checks the storage is writable
    with signed_in(server, "dora") as client:
        generation, _ = new_generation(client, "Full disk", "fade-in", 60)
        body = {"generation_id": generation["id"], "width": 640, "height": 360}
        render = client.post("/v1/renders", json=body)
        assert render.status_code == 202
        last = watch_to_the_end(client, render.json()["id"])
        assert (last["status"], last["error"]) == ("failed", STORAGE_FAILED)
        assert client.get("/v1/quota").json()["remaining"] == 5
        assert client.get("/healthz").status_code == 200
        assert client.get(f"/v1/renders/{last['id']}").json()["status"] == "failed"
    leftovers = [p.name for p in full_disk.rglob("*") if p.is_file()]
    assert leftovers == ["filler"]


def status_of(client: httpx.Client, render_id: str) -> dict[str, object]:
    return client.get(f"/v1/renders/{render_id}").json()


@contextmanager
def signed_in(base: str, name: str) -> Iterator[httpx.Client]:
    """A client of ``base`` carrying a zero-setup token for ``name``."""
    with httpx.Client(base_url=base, timeout=30) as client:
        token = client.post("/v1/auth/token", json={"name": name}).json()["token"]
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def watch_to_the_end(client: httpx.Client, render_id: str) -> dict[str, Any]:
    """The render's last event on its live-progress stream (complete or failed)."""
    last: dict[str, Any] = {}
    with client.stream("GET", f"/v1/renders/{render_id}/events") as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                last = json.loads(line[5:])
                if last["status"] in ("complete", "failed"):
                    break
    return last


def new_generation(
    client: httpx.Client, text: str, style: str, frames: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A stored generation, and the props it was made of."""
    props = {"text": text, "style": style, "color": "#FFFFFF", "duration_in_frames": frames}
    return client.post("/v1/generations", json={"animation_props": props}).json(), props


def test_a_full_data_dir_refuses_writes_without_a_trace_and_recovers_when_freed(
    data_server: str, data_disk: Path
) -> None:
    with signed_in(data_server, "erin") as client:
        text = "The database and the videos share one small, full filesystem."
        generation, props = new_generation(client, text, "typewriter", 600)
        big = {"generation_id": generation["id"], "width": 1920, "height": 1080}
        accepted = client.post("/v1/renders", json=big)
        assert accepted.status_code == 202
        waiting = accepted.json()["id"]
        fill(data_disk / "filler", block=65536)  # a few ms: before the 1.4 s render can end

        # While full: writes are refused with a 503 saying so (no trace, no internals), and
        # cost no quota; reads and the health check answer; the accepted render waits.
        for path, body in (
            ("/v1/generations", {"animation_props": props}),
            ("/v1/renders", big),
        ):
            answer = client.post(path, json=body)
            assert answer.status_code == 503, (path, answer.status_code, answer.text)
            assert answer.headers["Retry-After"] == "5"
            error = answer.json()["error"]
            assert set(error) == {"code", "message"}, answer.text
            assert error["code"] == "unavailable" and "disk is full" in error["message"]
            assert "Traceback" not in answer.text and "sqlite" not in answer.text.lower()
        assert client.get("/healthz").status_code == 200
        assert client.get("/v1/quota").json()["remaining"] == 4
        for _ in range(3):
            row = status_of(client, waiting)
            assert row["status"] in ("pending", "rendering"), row  # nothing can be recorded
            time.sleep(1)

        # Space freed: the waiting render ends (complete, or failed with the storage sentence
        # and its slot back) and a new render completes.
        (data_disk / "filler").unlink()
        deadline = time.monotonic() + 60
        while (row := status_of(client, waiting))["status"] not in ("complete", "failed"):
            assert time.monotonic() < deadline, f"render left {row['status']} after freeing"
            time.sleep(0.5)
        if row["status"] == "failed":
            assert row["error"] == STORAGE_FAILED
            assert client.get("/v1/quota").json()["remaining"] == 5
        else:
            url = client.post(f"/v1/renders/{waiting}/download-url").json()["url"]
            assert client.get(url).content[4:8] == b"ftyp", "the stored video is whole"
        small = {"generation_id": generation["id"], "width": 320, "height": 180}
        fresh = client.post("/v1/renders", json=small)
        assert fresh.status_code == 202, fresh.text
        last = watch_to_the_end(client, fresh.json()["id"])
        assert last["status"] == "complete", last
        assert client.get("/healthz").status_code == 200
    debris = [p.name for p in data_disk.rglob(".tmp-*")]
    assert debris == [], "half-written videos left behind"
