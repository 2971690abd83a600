"""``renderlab.client`` against a real ``renderlab serve`` subprocess: the journey (create,
render, wait, download and decode), typed errors (422 ``APIError``, quota ``RateLimited``),
reconnecting ``wait``, the async client, and webhook verification."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest

from renderlab.client import (
    APIError,
    AsyncClient,
    Client,
    RateLimited,
    WebhookVerificationError,
    verify_webhook,
)
from renderlab.webhooks import make_event, new_secret, sign_headers
from tests.client_helpers import cutting_proxy
from tests.factories import PROPS
from tests.serve_helpers import ROOT, Server, renderlab, serve

SHORT = {**PROPS, "duration_in_frames": 30}
SIZE = {"width": 160, "height": 90}
PER_HOUR = 2


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("client") / "data"
    with serve(
        data,
        RENDERLAB_WORKERS="1",
        RENDERLAB_RENDERS_PER_HOUR=str(PER_HOUR),
        RENDERLAB_MAX_CONCURRENT_RENDERS="10",
    ) as running:
        yield running


def token(server: Server, name: str) -> str:
    result = subprocess.run(
        renderlab("token", name), env=server.env, cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _decoded(path: Path) -> tuple[int, int, int]:
    with av.open(str(path)) as container:
        frames = [frame for frame in container.decode(video=0)]
    return len(frames), frames[0].width, frames[0].height


def test_create_render_wait_download(server: Server, tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []
    with Client(server.base, token(server, "alice")) as rl:
        generation = rl.create_generation(SHORT, prompt="say hi")
        started = rl.start_render(generation["id"], **SIZE)
        assert started["status"] in ("pending", "rendering")
        done = rl.wait(started["id"], on_progress=seen.append, timeout=120)
        assert done["status"] == "complete", done
        assert seen[-1] == done and [r["progress"] for r in seen] == sorted(
            r["progress"] for r in seen
        )
        path = rl.download(done, tmp_path / "hi.mp4")
        assert path == tmp_path / "hi.mp4" and not (tmp_path / "hi.mp4.part").exists()
        assert _decoded(path) == (30, 160, 90)
        assert rl.get_render(done["id"])["id"] == done["id"]
        quota = rl.quota()
        assert (quota["limit"], quota["remaining"]) == (PER_HOUR, PER_HOUR - 1)


def test_refusals_are_typed_errors(server: Server) -> None:
    with Client(server.base, token(server, "erin")) as rl:
        with pytest.raises(APIError) as refused:
            rl.create_generation({**SHORT, "color": "white"})
        assert (refused.value.status, refused.value.code) == (422, "invalid_request")
        assert "animation_props.color" in str(refused.value.body["fields"])
        assert not isinstance(refused.value, RateLimited)
        with pytest.raises(APIError) as missing:
            rl.get_render("01J00000000000000000000000")
        assert missing.value.status == 404
        with pytest.raises(ValueError, match="not complete"):
            generation = rl.create_generation(SHORT)
            rl.download(rl.start_render(generation["id"], **SIZE), "never.mp4")
    with Client(server.base, "not-a-token") as anonymous, pytest.raises(APIError) as denied:
        anonymous.quota()
    assert denied.value.status == 401


def test_wait_reconnects_when_the_stream_drops(server: Server) -> None:
    """The proxy cuts the first stream after its first event; the render is still queued then
    (one worker, busy with a longer render first), so ``wait`` must reconnect to see it end."""
    seen: list[dict[str, Any]] = []
    secret_token = token(server, "dave")
    with Client(server.base, secret_token) as rl:
        # Seconds of work even on a quiet machine with a warm render process: a short fade-in
        # could end before the watched render's first event, which would then not be pending.
        long_text = {"text": "A blocker typing for twenty seconds. " * 10, "style": "typewriter"}
        blocker = rl.create_generation({**PROPS, **long_text, "duration_in_frames": 600})
        rl.start_render(blocker["id"], width=640, height=360)
        started = rl.start_render(rl.create_generation(SHORT)["id"], **SIZE)
        with cutting_proxy(server.port) as proxy, Client(proxy.url, secret_token) as through:
            done = through.wait(started["id"], on_progress=seen.append, timeout=120)
    assert seen[0]["status"] == "pending"
    assert done["status"] == "complete"
    assert proxy.connections >= 2


def test_async_client(server: Server, tmp_path: Path) -> None:
    async def journey() -> tuple[dict[str, Any], Path, dict[str, Any]]:
        async with AsyncClient(server.base, token(server, "bob")) as rl:
            generation = await rl.create_generation(SHORT)
            started = await rl.start_render(generation["id"], **SIZE)
            done = await rl.wait(started["id"], timeout=120)
            path = await rl.download(started["id"], tmp_path / "async.mp4")
            with pytest.raises(APIError) as refused:
                await rl.start_render(generation["id"], width=161, height=90)
            assert refused.value.status == 422
            return done, path, await rl.quota()

    done, path, quota = asyncio.run(journey())
    assert done["status"] == "complete"
    assert _decoded(path) == (30, 160, 90)
    assert quota["remaining"] == PER_HOUR - 1


def test_quota_exhausted_is_rate_limited(server: Server) -> None:
    with Client(server.base, token(server, "carol")) as rl:
        generation = rl.create_generation(SHORT)
        for _ in range(PER_HOUR):
            rl.start_render(generation["id"], **SIZE)
        with pytest.raises(RateLimited) as limited:
            rl.start_render(generation["id"], **SIZE)
    assert (limited.value.status, limited.value.code) == (429, "rate_limited")
    assert 0 < limited.value.retry_after_ms <= 3_600_000


def test_render_in_one_request(server: Server, tmp_path: Path) -> None:
    with Client(server.base, token(server, "frank")) as rl:
        started = rl.render(SHORT, prompt="one request", metadata={"job": 1}, **SIZE)
        done = rl.wait(started["id"], timeout=120)
        assert (done["status"], done["metadata"]) == ("complete", {"job": 1})
        assert _decoded(rl.download(done, tmp_path / "one.mp4")) == (30, 160, 90)
        assert rl.get_generation(done["generation_id"])["prompt"] == "one request"
        with pytest.raises(APIError) as refused:
            rl.render({**SHORT, "color": "white"}, **SIZE)
        assert (refused.value.status, refused.value.code) == (422, "invalid_request")
        assert "animation_props.color" in str(refused.value.body["fields"])
        assert rl.quota()["remaining"] == PER_HOUR - 1  # the refusal cost nothing


def test_delete_render(server: Server) -> None:
    with Client(server.base, token(server, "gina")) as rl:
        started = rl.start_render(rl.create_generation(SHORT)["id"], **SIZE)
        rl.wait(started["id"], timeout=120)
        rl.delete_render(started["id"])
        with pytest.raises(APIError) as gone:
            rl.get_render(started["id"])
        assert gone.value.status == 404


def test_verify_webhook() -> None:
    secret = new_secret()
    event = make_event("render.completed", {"id": "r1", "status": "complete"}, 0)
    body = event.body()
    headers = sign_headers(event.id, int(time.time()), body, secret)
    assert verify_webhook(body, headers, secret)["data"]["id"] == "r1"
    with pytest.raises(WebhookVerificationError):
        verify_webhook(body + b" ", headers, secret)


def test_wait_gives_up_at_its_timeout_when_nothing_answers() -> None:
    from tests.api_helpers import free_socket

    sock = free_socket()  # bound, never listening: every connection is refused
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        with Client(base, "token") as rl:
            started = time.monotonic()
            with pytest.raises(TimeoutError, match="did not end in time"):
                rl.wait("01J00000000000000000000000", timeout=1.0)
            assert time.monotonic() - started < 10
    finally:
        sock.close()
