"""``renderlab serve`` end to end, as a user meets it: a fresh data dir, a token from
``renderlab token``, a render made by the embedded workers and watched live, the MP4 downloaded
through its signed URL, and a clean shutdown."""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.api_helpers import free_socket, sse_messages
from tests.factories import PROPS
from tests.s3_server import free_port
from tests.serve_helpers import ROOT, renderlab, serve, serve_env, small_render


def test_serve_renders_and_streams_and_downloads(tmp_path: Path) -> None:
    with (
        serve(tmp_path / "data", RENDERLAB_WORKERS="1") as server,
        httpx.Client(base_url=server.base, timeout=10) as client,
    ):
        token = subprocess.run(
            renderlab("token", "alice"), env=server.env, cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        headers = {"Authorization": f"Bearer {token}"}
        render = small_render(client, headers, 320, 180)
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
    assert server.process.returncode == 0, server.stderr
    assert f"renderlab on http://127.0.0.1:{server.port}/" in server.stderr
    assert "renderlab token" in server.stderr


def test_serve_on_a_taken_port_says_so_in_one_line_before_anything_starts(tmp_path: Path) -> None:
    """It printed its banner ("renderlab on http://...") and then uvicorn's bind error, exit 3."""
    holder = free_socket()
    holder.listen()
    port = holder.getsockname()[1]
    try:
        result = subprocess.run(
            renderlab("serve", "--port", str(port)),
            env=serve_env(tmp_path / "data"),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        holder.close()
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"error: 127.0.0.1:{port} is in use (another renderlab serve?): stop what holds it,"
        f" or pass --port {port + 1}"
    ]
    assert not (tmp_path / "data" / "renderlab.db").exists()  # refused before the database


def test_serve_refuses_an_unmigrated_shared_database(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text

    from tests.conftest import PG_ADMIN_URL

    name = f"renderlab_unmigrated_{os.getpid()}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        env = serve_env(
            tmp_path / "data",
            RENDERLAB_DATABASE_URL=PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name,
        )
        result = subprocess.run(  # a free port: the database is what it must refuse
            renderlab("serve", "--port", str(free_port())),
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


def test_serve_with_two_processes_shares_the_port_the_quota_and_the_renders(
    tmp_path: Path,
) -> None:
    """``--processes 2``: two API processes answer on one port; 20 simultaneous starts by one
    user, spread over both, let exactly the quota through (SQLite writers of both processes
    queue on one lock); each accepted render completes, watched live from either process."""
    with (
        serve(
            tmp_path / "data",
            "--processes",
            "2",
            RENDERLAB_WORKERS="2",
            RENDERLAB_MAX_CONCURRENT_RENDERS="20",  # the quota decides here, not the cap
        ) as server,
        httpx.Client(base_url=server.base, timeout=30) as client,
    ):
        assert len(_api_processes(server.process.pid)) == 2
        token = client.post("/v1/auth/token", json={"name": "alice"}).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        props = {**PROPS, "duration_in_frames": 30}
        generation = client.post(
            "/v1/generations", json={"animation_props": props}, headers=headers
        )
        assert generation.status_code == 201, generation.text
        body = {"generation_id": generation.json()["id"], "width": 160, "height": 90}

        def start(_: int) -> httpx.Response:
            with httpx.Client(base_url=server.base, timeout=30) as own:  # a connection each
                return own.post("/v1/renders", json=body, headers=headers)

        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(start, range(20)))
        codes = sorted(answer.status_code for answer in answers)
        assert codes == [202] * 5 + [429] * 15, codes
        for render in (answer.json() for answer in answers if answer.status_code == 202):
            with client.stream(
                "GET", f"/v1/renders/{render['id']}/events", headers=headers, timeout=90
            ) as stream:
                final = [m.data for m in sse_messages(stream) if m.event][-1]
            assert final["status"] == "complete", final
    assert server.process.returncode == 0, server.stderr
    assert "2 API processes, 1 render worker(s) each" in server.stderr


def _api_processes(parent: int) -> list[int]:
    """The uvicorn worker processes of ``serve`` (its children running ``spawn_main``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if ppid == parent and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found
