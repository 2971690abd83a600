"""A full disk under the storage, seen from the user's side of a real ``renderlab serve``.

`tests/test_storage_local.py` shows a full disk (RLIMIT_FSIZE) keeps old objects and leaves no
debris, and `tests/test_embedded.py` that unwritable storage fails the render and refunds; this
one puts the storage on a real 8 KiB tmpfs (ENOSPC, not EPERM) and checks what the HTTP client
sees: the render ends ``failed`` with the storage sentence over SSE, the quota slot comes back,
nothing half-written is left on the full filesystem, and the server keeps answering. Mounting
needs root, which the CI machine has: without it the test fails, it does not skip.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from renderlab.pipeline.failures import STORAGE_FAILED

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def server(tmp_path: Path, full_disk: Path) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "RENDERLAB_DATA_DIR": str(tmp_path / "data"),
        "RENDERLAB_STORAGE_URL": f"file://{full_disk}",
        "RENDERLAB_JWT_SECRET": "disk-full-secret-" + "d" * 40,
        "RENDERLAB_WORKERS": "1",
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


def fill(path: Path) -> None:
    """Write until the filesystem says ENOSPC: the disk is now full to the last byte."""
    with path.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 1024)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def test_full_storage_disk_fails_the_render_refunds_and_keeps_serving(
    server: str, full_disk: Path
) -> None:
    fill(full_disk / "filler")  # after start: serve checks the storage is writable
    with httpx.Client(base_url=server, timeout=30) as client:
        token = client.post("/v1/auth/token", json={"name": "dora"}).json()["token"]
        client.headers["Authorization"] = f"Bearer {token}"
        props = {
            "text": "Full disk",
            "style": "fade-in",
            "color": "#FFFFFF",
            "duration_in_frames": 60,
        }
        generation = client.post("/v1/generations", json={"animation_props": props}).json()
        body = {"generation_id": generation["id"], "width": 640, "height": 360}
        render = client.post("/v1/renders", json=body)
        assert render.status_code == 202
        last: dict[str, object] = {}
        with client.stream("GET", f"/v1/renders/{render.json()['id']}/events") as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    last = json.loads(line[5:])
                    if last["status"] in ("complete", "failed"):
                        break
        assert (last["status"], last["error"]) == ("failed", STORAGE_FAILED)
        assert client.get("/v1/quota").json()["remaining"] == 5
        assert client.get("/healthz").status_code == 200
        assert client.get(f"/v1/renders/{last['id']}").json()["status"] == "failed"
    leftovers = [p.name for p in full_disk.rglob("*") if p.is_file()]
    assert leftovers == ["filler"]
