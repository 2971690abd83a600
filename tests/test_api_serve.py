"""``renderlab serve`` end to end, as a user meets it: a fresh data dir, a token from
``renderlab token``, a render made by the embedded workers and watched live, the MP4 downloaded
through its signed URL, and a clean shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.api_helpers import free_socket, sse_messages
from tests.factories import PROPS

ROOT = Path(__file__).resolve().parent.parent


def renderlab(*args: str) -> list[str]:
    return [sys.executable, "-m", "renderlab", *args]


def test_serve_renders_and_streams_and_downloads(tmp_path: Path) -> None:
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    env = {
        **os.environ,
        "RENDERLAB_DATA_DIR": str(tmp_path / "data"),
        "RENDERLAB_WORKERS": "1",
    }
    for name in ("RENDERLAB_DATABASE_URL", "RENDERLAB_STORAGE_URL", "RENDERLAB_BROKER_URL"):
        env.pop(name, None)
    server = subprocess.Popen(
        renderlab("serve", "--port", str(port), "--no-access-log"),
        env=env,
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=10) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert server.poll() is None, "serve exited"
                assert time.monotonic() < deadline, "serve did not come up"
                time.sleep(0.2)
            token = subprocess.run(
                renderlab("token", "alice"), env=env, cwd=ROOT, capture_output=True, text=True
            ).stdout.strip()
            headers = {"Authorization": f"Bearer {token}"}
            generation = client.post(
                "/v1/generations",
                json={"animation_props": {**PROPS, "duration_in_frames": 30}},
                headers=headers,
            ).json()
            render = client.post(
                "/v1/renders",
                json={"generation_id": generation["id"], "width": 320, "height": 180},
                headers=headers,
            ).json()
            statuses = []
            with client.stream(
                "GET", f"/v1/renders/{render['id']}/events", headers=headers, timeout=90
            ) as stream:
                for message in sse_messages(stream):
                    if message.event:
                        statuses.append((message.data["status"], message.data["progress"]))
                        final = message.data
            assert final["status"] == "complete", final
            assert statuses[0][0] in ("pending", "rendering")
            progress = [p for _, p in statuses]
            assert progress == sorted(progress)
            video = httpx.get(final["output_url"], timeout=10)
            assert video.status_code == 200
            assert video.headers["content-type"] == "video/mp4"
            assert video.content[4:8] == b"ftyp"
            assert len(video.content) == final["output_size"]
            fresh = client.post(f"/v1/renders/{render['id']}/download-url", headers=headers)
            assert httpx.get(fresh.json()["url"], timeout=10).content == video.content
    finally:
        server.send_signal(signal.SIGINT)
        try:
            _, stderr = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            _, stderr = server.communicate()
    assert server.returncode == 0, stderr
    assert f"renderlab on http://127.0.0.1:{port}/" in stderr
    assert "renderlab token" in stderr


def test_serve_refuses_an_unmigrated_shared_database(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text

    from tests.conftest import PG_ADMIN_URL

    name = f"renderlab_unmigrated_{os.getpid()}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        env = {
            **os.environ,
            "RENDERLAB_DATA_DIR": str(tmp_path / "data"),
            "RENDERLAB_DATABASE_URL": PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name,
        }
        result = subprocess.run(
            renderlab("serve", "--port", "1"),
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    assert result.returncode == 2
    assert "renderlab db upgrade" in result.stderr
