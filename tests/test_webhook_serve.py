"""Webhooks from a real ``renderlab serve`` (embedded mode) to real receivers on 127.0.0.1:
a receiver failing twice gets three signed attempts with one ``webhook-id``, and a render
whose receiver is down when it ends still gets its webhook after ``serve`` is SIGKILLed and
started again on the same data dir."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from renderlab.client import Client, verify_webhook
from tests.api_helpers import free_socket
from tests.factories import PROPS
from tests.pipeline_helpers import wait_for
from tests.serve_helpers import ROOT, Server, renderlab, serve
from tests.webhook_helpers import Received, receiver

SHORT = {**PROPS, "duration_in_frames": 30}
SIZE = {"width": 160, "height": 90}
ENV = {
    "RENDERLAB_WORKERS": "1",
    "RENDERLAB_WEBHOOK_ALLOW_PRIVATE": "true",
    "RENDERLAB_WEBHOOK_RETRY_SCHEDULE_S": ",".join(["1"] * 20),
    # A serve killed in the middle of an attempt leaves a lease: let it lapse quickly.
    "RENDERLAB_WEBHOOK_TIMEOUT_S": "2",
    "RENDERLAB_WEBHOOK_LEASE_MS": "3000",
}


def _cli(server: Server, *args: str) -> str:
    result = subprocess.run(
        renderlab(*args), env=server.env, cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _deliveries(server: Server, token: str, render_id: str) -> list[dict[str, Any]]:
    with Client(server.base, token) as rl:
        return rl.webhook_deliveries(render_id)


def _verified(request: Received, secret: str) -> dict[str, Any]:
    return verify_webhook(request.body, request.headers, secret)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve(tmp_path_factory.mktemp("hooks") / "data", **ENV) as running:
        yield running


def test_a_receiver_failing_twice_gets_three_signed_attempts(server: Server) -> None:
    token, secret = _cli(server, "token", "alice"), _cli(server, "webhook-secret")
    with receiver([500, 503]) as hook, Client(server.base, token) as rl:
        started = rl.render(SHORT, webhook_url=hook.url, metadata={"order": 7}, **SIZE)
        done = rl.wait(started["id"], timeout=120)
        wait_for(lambda: len(_deliveries(server, token, started["id"])) == 3, timeout=60)
    assert len(hook.requests) == 3
    assert len({r.headers["webhook-id"] for r in hook.requests}) == 1
    events = [_verified(r, secret) for r in hook.requests]
    assert {e["type"] for e in events} == {"render.completed"}
    last = events[-1]["data"]
    assert (last["id"], last["status"], last["metadata"]) == (done["id"], "complete", {"order": 7})
    listed = _deliveries(server, token, started["id"])
    assert [(d["attempt"], d["status_code"]) for d in listed] == [(3, 200), (2, 503), (1, 500)]


def test_a_webhook_pending_when_serve_is_killed_is_delivered_after_restart(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    down = free_socket()  # bound, not listening: every attempt is refused
    port = down.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hooks/renderlab"
    try:
        with serve(data, **ENV) as first:
            token = _cli(first, "token", "alice")
            with Client(first.base, token) as rl:
                started = rl.render(SHORT, webhook_url=url, **SIZE)
                assert rl.wait(started["id"], timeout=120)["status"] == "complete"
            wait_for(lambda: _deliveries(first, token, started["id"]), timeout=60)
            first.process.kill()  # SIGKILL: no shutdown of any kind
            first.process.wait(10)
    finally:
        down.close()
    with receiver(port=port) as hook, serve(data, **ENV) as second:
        secret = _cli(second, "webhook-secret")
        wait_for(lambda: hook.requests, timeout=60)
        listed = _deliveries(second, token, started["id"])
    event = _verified(hook.requests[0], secret)
    assert (event["type"], event["data"]["id"]) == ("render.completed", started["id"])
    # Rebuilt at delivery: the output URL is signed by the server that sent it, now.
    assert event["data"]["output_url"].startswith(second.base)
    assert listed[0]["status_code"] == 200
    assert all(d["status_code"] is None and d["error"] for d in listed[1:])
