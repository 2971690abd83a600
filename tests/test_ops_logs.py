"""``RENDERLAB_LOG_FORMAT=json``: every line a real ``renderlab serve`` writes (its own, uvicorn's
access and error logs, the embedded render processes') is one JSON object with ``ts``,
``level``, ``msg``, and the request's ``X-Request-ID`` is on that request's lines."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.factories import PROPS
from tests.serve_helpers import serve, small_render


def test_json_logs_every_line_of_serve_and_its_render_workers(tmp_path: Path) -> None:
    with (
        serve(
            tmp_path / "data", "--access-log", RENDERLAB_LOG_FORMAT="json", RENDERLAB_WORKERS="1"
        ) as server,
        httpx.Client(base_url=server.base, timeout=30) as client,
    ):
        token = client.post("/v1/auth/token", json={"name": "alice"}).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        generation = client.post(
            "/v1/generations",
            json={"animation_props": {**PROPS, "duration_in_frames": 30}},
            headers={**headers, "X-Request-ID": "gen-req-1"},
        )
        assert generation.headers["x-request-id"] == "gen-req-1"
        started = client.post(
            "/v1/renders",
            json={"generation_id": generation.json()["id"], "width": 160, "height": 90},
            headers={**headers, "X-Request-ID": "render-req-42"},
        )
        assert started.status_code == 202, started.text
        assert started.headers["x-request-id"] == "render-req-42"
        _wait_complete(client, started.json()["id"], headers)
        missing = client.get("/v1/renders/nope", headers={**headers, "X-Request-ID": "a b"})
        assert missing.status_code == 404
        assert missing.headers["x-request-id"] not in ("a b", "")  # not sane: a new one
    assert server.process.returncode == 0, server.stderr
    records = [_parse(line) for line in (server.stderr + server.stdout).splitlines()]
    assert len(records) > 5
    for record in records:
        assert {"ts", "level", "msg"} <= record.keys(), record
    on_render_request = [r for r in records if r.get("request_id") == "render-req-42"]
    assert any("POST /v1/renders" in r["msg"] for r in on_render_request), records
    assert any(r.get("request_id") == "gen-req-1" for r in records)
    assert any("renderlab on http://127.0.0.1" in r["msg"] for r in records)  # serve's own
    from_render_process = [r for r in records if r["pid"] != server.process.pid]
    assert any(r["logger"] == "renderlab.pipeline.run" for r in from_render_process), records
    # The render process's lines say which render, whose, and which request started it.
    render_id = started.json()["id"]
    rendering = [r for r in from_render_process if r.get("render_id") == render_id]
    assert any("complete" in r["msg"] for r in rendering), from_render_process
    assert all(r.get("request_id") == "render-req-42" for r in rendering), rendering
    assert all(r.get("user_id") for r in rendering), rendering
    # The access lines of authenticated requests also say who asked.
    assert all(r.get("user_id") for r in on_render_request)


def test_text_logs_stay_the_default_and_readable(tmp_path: Path) -> None:
    with serve(tmp_path / "data", RENDERLAB_WORKERS="1") as server:
        answer = httpx.get(f"{server.base}/healthz", headers={"X-Request-ID": "x" * 129})
        assert len(answer.headers["x-request-id"]) == 32  # too long: replaced
    assert f"renderlab on http://127.0.0.1:{server.port}/" in server.stderr
    assert not any(line.startswith("{") for line in server.stderr.splitlines())
    banner = next(line for line in server.stderr.splitlines() if "renderlab on" in line)
    assert banner.rstrip().endswith(")")  # one line: not wrapped at 80 columns in a log


def _parse(line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError:
        raise AssertionError(f"not a JSON line: {line!r}") from None
    assert isinstance(record, dict), line
    return record


def _wait_complete(client: httpx.Client, render_id: str, headers: dict[str, str]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        render = client.get(f"/v1/renders/{render_id}", headers=headers).json()
        if render["status"] in ("complete", "failed", "cancelled"):
            assert render["status"] == "complete", render
            return
        time.sleep(0.1)
    raise AssertionError("the render did not finish within 90 s")


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_access_lines_never_hold_a_download_links_signature(
    tmp_path: Path, log_format: str
) -> None:
    """A signed link is valid for its whole TTL: the access line of its download keeps the
    path and the other fields, with ``sig=redacted``."""
    from urllib.parse import parse_qs, urlsplit

    with (
        serve(
            tmp_path / "data",
            "--access-log",
            RENDERLAB_LOG_FORMAT=log_format,
            RENDERLAB_WORKERS="1",
        ) as server,
        httpx.Client(base_url=server.base, timeout=30) as client,
    ):
        token = client.post("/v1/auth/token", json={"name": "alice"}).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        started = small_render(client, headers)
        _wait_complete(client, started["id"], headers)
        url = client.get(f"/v1/renders/{started['id']}", headers=headers).json()["output_url"]
        assert client.get(url).status_code == 200
    signature = parse_qs(urlsplit(url).query)["sig"][0]
    logged = server.stderr + server.stdout
    download = [line for line in logged.splitlines() if urlsplit(url).path in line]
    assert download, logged
    assert all("sig=redacted" in line and "expires=" in line for line in download), download
    assert signature not in logged
