"""Live progress over real HTTP (uvicorn on loopback, httpx streaming): the render now and after
every change until a terminal status, keep-alive comments, proxy-safe headers, and updates
written by another process reaching the watcher within 0.5 s (p95)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from renderlab import store
from renderlab.clock import now_ms
from renderlab.config import Settings
from renderlab.db import Database
from renderlab.limits import Limits
from renderlab.services import Services
from tests.api_helpers import bearer, live_server, make_api, sse_messages, user_id_of
from tests.factories import make_generation, make_render

ROOT = Path(__file__).resolve().parent.parent


def update(db: Database, render_id: str, **changes: object) -> None:
    with db.transaction() as session:
        store.update(session, render_id, now=now_ms(), **changes)


@pytest.fixture
def fast_keepalive(services: Services) -> Iterator[Services]:
    services.limits = Limits(sse_keepalive_s=0.2)
    yield services


def test_stream_sends_now_and_after_every_change_then_ends(services: Services) -> None:
    app = make_api(services)
    user = user_id_of(app, "alice")
    render_id = make_render(services.db, user, make_generation(services.db, user))

    def worker() -> None:
        time.sleep(0.3)
        update(services.db, render_id, status="rendering", progress=10)
        time.sleep(0.3)
        update(services.db, render_id, heartbeat_at=1)  # invisible: no event
        time.sleep(0.3)
        update(services.db, render_id, progress=60)
        time.sleep(0.3)
        update(services.db, render_id, status="complete", output_url="https://x.test/v.mp4")

    with live_server(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        thread = threading.Thread(target=worker)
        with client.stream(
            "GET", f"/v1/renders/{render_id}/events", headers=bearer(app, "alice")
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-store"  # it carries signed URLs
            assert response.headers["x-accel-buffering"] == "no"
            assert response.headers["x-content-type-options"] == "nosniff"
            thread.start()
            events = [m for m in sse_messages(response) if m.event]
        thread.join()
    assert {m.event for m in events} == {"render"}
    seen = [(m.data["status"], m.data["progress"]) for m in events]
    assert seen == [("pending", 0), ("rendering", 10), ("rendering", 60), ("complete", 100)]
    assert events[-1].data["output_url"] == "https://x.test/v.mp4"
    assert events[-1].data["user_id"] == "renderlab|alice"
    assert events[-1].data["completed_at"].endswith("Z")


def test_finished_render_sends_one_event_and_ends(services: Services) -> None:
    app = make_api(services)
    user = user_id_of(app, "alice")
    render_id = make_render(services.db, user, make_generation(services.db, user))
    update(services.db, render_id, status="failed", error="The render took too long.")
    with live_server(app) as base, httpx.Client(base_url=base, timeout=5) as client:
        url = f"{base}/v1/renders/{render_id}/events"
        with client.stream("GET", url, headers=bearer(app, "alice")) as response:
            messages = list(sse_messages(response))
    assert [(m.event, m.data["status"]) for m in messages] == [("render", "failed")]
    assert messages[0].data["error"] == "The render took too long."


def test_idle_stream_gets_keepalive_comments(fast_keepalive: Services) -> None:
    services = fast_keepalive
    app = make_api(services)
    user = user_id_of(app, "alice")
    render_id = make_render(services.db, user, make_generation(services.db, user))
    comments = 0
    with live_server(app) as base, httpx.Client(base_url=base, timeout=5) as client:
        url = f"{base}/v1/renders/{render_id}/events"
        with client.stream("GET", url, headers=bearer(app, "alice")) as response:
            for message in sse_messages(response):
                if message.event == "":
                    comments += 1
                    if comments == 3:
                        update(services.db, render_id, status="failed", error="Cancelled.")
    assert comments >= 3


def test_stream_errors_before_streaming_are_plain_json(services: Services) -> None:
    app = make_api(services)
    with live_server(app) as base, httpx.Client(base_url=base, timeout=5) as client:
        missing = client.get(
            "/v1/renders/01ARZ3NDEKTSV4RRFFQ69G5FAV/events", headers=bearer(app, "alice")
        )
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
        anonymous = client.get("/v1/renders/01ARZ3NDEKTSV4RRFFQ69G5FAV/events")
        assert anonymous.status_code == 401


def test_client_disconnect_releases_the_subscription(services: Services) -> None:
    app = make_api(services)
    user = user_id_of(app, "alice")
    render_id = make_render(services.db, user, make_generation(services.db, user))
    feed = app.state.ctx.feed
    with live_server(app) as base:
        for _ in range(3):
            with (
                httpx.Client(base_url=base, timeout=5) as client,
                client.stream(
                    "GET", f"/v1/renders/{render_id}/events", headers=bearer(app, "alice")
                ) as response,
            ):
                messages = sse_messages(response)  # (dropping it would close the stream)
                next(messages)
                assert feed.subscriber_count == 1
            # The server notices the disconnect on its own time: each one is released before
            # the next stream opens (else two would be counted here on a busy machine).
            deadline = time.monotonic() + 5
            while feed.subscriber_count and time.monotonic() < deadline:
                time.sleep(0.05)
            assert feed.subscriber_count == 0


WRITER = textwrap.dedent(
    """
    import sys, time
    from renderlab import store
    from renderlab.clock import now_ms
    from renderlab.db import Database

    url, render_id, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    db = Database(url)
    print("ready", flush=True)
    sys.stdin.readline()
    for step in range(1, steps + 1):
        time.sleep(0.12)
        with db.transaction() as session:
            changes = {"progress": step * 4}
            if step == 1:
                changes["status"] = "rendering"
            if step == steps:
                changes = {"status": "complete"}  # progress becomes 100
            store.update(session, render_id, now=now_ms(), **changes)
        print(step * 4 if step < steps else 100, time.time(), flush=True)
    """
)


def test_updates_from_another_process_reach_the_watcher_fast(
    tmp_path: Path, database_url: str
) -> None:
    """A separate process (as a worker would) writes 20 updates; each event's arrival is
    compared with the writer's commit timestamp on the same machine clock."""
    db = Database(database_url)
    services = Services(
        settings=Settings(data_dir=tmp_path / "data", database_url=database_url),
        limits=Limits(),
        db=db,
    )
    app = make_api(services)
    user = user_id_of(app, "alice")
    render_id = make_render(db, user, make_generation(db, user))
    steps = 20
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, database_url, render_id, str(steps)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdin is not None
        assert writer.stdout.readline().strip() == "ready"
        arrivals: dict[int, float] = {}
        with live_server(app) as base, httpx.Client(base_url=base, timeout=20) as client:
            url = f"{base}/v1/renders/{render_id}/events"
            with client.stream("GET", url, headers=bearer(app, "alice")) as response:
                messages = sse_messages(response)
                next(messages)  # the current state
                writer.stdin.write("go\n")
                writer.stdin.flush()
                for message in messages:
                    if message.event:
                        arrivals.setdefault(message.data["progress"], message.received_at)
        out, _ = writer.communicate(timeout=20)
    finally:
        writer.kill()
        db.dispose()
    committed = {int(p): float(t) for p, t in (line.split() for line in out.splitlines())}
    latencies = sorted(arrivals[p] - committed[p] for p in committed if p in arrivals)
    assert 100 in arrivals  # the terminal state always arrives
    assert len(latencies) >= steps * 0.8  # coalescing may merge a few, not most
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    median = statistics.median(latencies)
    print(f"watcher latency: median {median * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms")
    assert p95 < 0.5
