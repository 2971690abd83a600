"""Cluster mode end to end: the machine's PostgreSQL and Redis, an S3 server on loopback and
two ``renderlab worker`` processes. A 600-frame render fans out into chunks that both workers
encode; a composition that cannot render fails at once, without retries; SIGKILL of a worker
mid-render still ends the render, never leaves it stuck."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from renderlab.config import Settings
from renderlab.limits import Limits
from renderlab.models import Generation, RenderChunk, RenderStatus
from renderlab.pipeline import chunked
from renderlab.pipeline.failures import WORKER_LOST
from renderlab.pipeline.start import RenderRequest, start_render
from renderlab.services import Services, build_services
from renderlab.webhooks import verify, webhook_secret
from renderlab.workers.celery_app import make_celery
from renderlab.workers.dispatch import CeleryDispatcher
from tests.celery_helpers import (
    REDIS_BROKER,
    kill,
    purge_queue,
    require_redis,
    start_worker,
    unique_queue,
    wait_ready,
)
from tests.factories import make_generation, make_user
from tests.pipeline_helpers import ffprobe, full_row, non_decreasing, wait_for
from tests.s3_server import S3_TEST_CREDENTIALS, create_bucket
from tests.webhook_helpers import receiver

LIMITS = {
    # Far above what a render here takes when idle (a few seconds): on a busy 2-core machine
    # the surviving worker of the kill test must still finish within it. Every wait in this
    # module is on a condition, so a longer timeout costs nothing when things go well.
    "RENDERLAB_RENDER_TIMEOUT_MS": "120000",
    "RENDERLAB_LEASE_MS": "2000",
    "RENDERLAB_PENDING_REDISPATCH_MS": "2000",
    "RENDERLAB_CHUNK_FRAMES": "75",
    "RENDERLAB_RENDERS_PER_HOUR": "100",
}
LONG_TEXT = "Chunks travel through S3 and are joined without re-encoding. " * 8


@dataclass
class Cluster:
    services: Services
    env: dict[str, str]
    queue: str
    logs: Path
    workers: dict[str, subprocess.Popen[bytes]]

    def restart(self, name: str) -> None:
        kill(self.workers[name])
        self.workers[name] = start_worker(name, self.env, self.logs, self.queue)


@pytest.fixture(scope="module")
def cluster(
    pg_url: str, s3_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    require_redis()
    queue = unique_queue()
    logs = tmp_path_factory.mktemp("cluster")
    bucket = f"renderlab-{queue}"
    create_bucket(s3_server, bucket)
    env = {
        **os.environ,
        **S3_TEST_CREDENTIALS,
        **LIMITS,
        "RENDERLAB_DATA_DIR": str(logs / "data"),
        "RENDERLAB_DATABASE_URL": pg_url,
        "RENDERLAB_BROKER_URL": REDIS_BROKER,
        "RENDERLAB_STORAGE_URL": f"s3://{bucket}",
        "RENDERLAB_S3_ENDPOINT_URL": s3_server,
        "RENDERLAB_WEBHOOK_ALLOW_PRIVATE": "true",  # receivers on 127.0.0.1
    }
    settings = Settings(
        data_dir=logs / "data",
        webhook_allow_private=True,
        database_url=pg_url,
        broker_url=REDIS_BROKER,
        storage_url=f"s3://{bucket}",
        s3_endpoint_url=s3_server,
    )
    limits = Limits(**{k.removeprefix("RENDERLAB_").lower(): int(v) for k, v in LIMITS.items()})
    with pytest.MonkeyPatch.context() as patch:
        for name, value in S3_TEST_CREDENTIALS.items():
            patch.setenv(name, value)
        services = build_services(settings, limits)
        services.dispatcher = CeleryDispatcher(make_celery(settings, limits, queue=queue), services)
        workers = {name: start_worker(name, env, logs, queue) for name in ("w1", "w2")}
        wait_ready(logs, list(workers))
        cluster = Cluster(services, env, queue, logs, workers)
        try:
            yield cluster
        finally:
            for process in cluster.workers.values():
                kill(process)
            services.db.dispose()
            purge_queue(REDIS_BROKER, queue)


def _start(services: Services, *, dispatch: bool = True, **props: object) -> str:
    user = make_user(services.db, f"user-{time.monotonic_ns()}")
    generation = make_generation(
        services.db, user, style="typewriter", text=LONG_TEXT, duration_in_frames=600, **props
    )
    dispatcher, services.dispatcher = services.dispatcher, None
    try:
        render, _ = start_render(services, user, RenderRequest(generation, 1280, 720))
    finally:
        services.dispatcher = dispatcher
    if dispatch and dispatcher is not None:
        dispatcher.dispatch(render.id)
    return render.id


def _finished(services: Services, render_id: str, seen: list[int] | None = None):  # type: ignore[no-untyped-def]
    def check() -> dict | None:
        row = full_row(services.db, render_id)
        if seen is not None:
            seen.append(row["progress"])
        return row if RenderStatus(row["status"]).is_terminal else None

    return check


def _chunks(services: Services, render_id: str) -> list[RenderChunk]:
    with services.db.session() as session:
        statement = select(RenderChunk).where(RenderChunk.render_id == render_id)
        chunks = list(session.execute(statement).scalars())
        session.expunge_all()  # detached as read (the session's rollback would expire them)
        return chunks


def test_chunks_run_on_both_workers_and_join(cluster: Cluster, tmp_path: Path) -> None:
    services = cluster.services
    render_id = _start(services)
    seen: list[int] = []

    row = wait_for(_finished(services, render_id, seen), timeout=90, interval=0.05)

    assert row["status"] == "complete", row["error"]
    assert non_decreasing(seen), "progress went down"
    assert any(0 < p < 100 for p in seen), "no progress between 0 and 100 was ever visible"
    chunks = _chunks(services, render_id)
    assert len(chunks) >= 4 and all(c.status == "complete" for c in chunks)
    assert {c.lease_owner.split("@")[0] for c in chunks if c.lease_owner} == {"w1", "w2"}
    video = services.storage.get_file(row["output_key"], tmp_path / "out.mp4")
    probe = ffprobe(video)
    assert (probe["codec_name"], probe["width"], probe["height"]) == ("h264", 1280, 720)
    assert int(probe["nb_read_packets"]) == 600
    assert row["output_size"] == video.stat().st_size
    assert not services.storage.exists(chunked.segment_key(render_id, 0)), "segments kept"


def test_a_composition_that_cannot_render_fails_at_once_without_retries(
    cluster: Cluster,
) -> None:
    services = cluster.services
    render_id = _start(services, dispatch=False)
    # Props that passed validation once but no longer do (a row written by an older version).
    generation_id = full_row(services.db, render_id)["generation_id"]
    with services.db.transaction() as session:
        session.execute(
            update(Generation)
            .where(Generation.id == generation_id)
            .values(animation_props={"text": "x", "style": "no-such-style"})
        )
    assert services.dispatcher is not None
    services.dispatcher.dispatch(render_id)

    row = wait_for(_finished(services, render_id), timeout=30, interval=0.05)

    assert row["status"] == "failed"
    assert row["error"].startswith("The animation's settings are not valid"), row["error"]
    assert row["error_code"] == "invalid_props"
    assert row["quota_refunded"] is True, "a render failing on its own props gives the slot back"
    assert all(c.attempts <= 1 for c in _chunks(services, render_id)), "a chunk was retried"


def test_a_killed_worker_never_leaves_the_render_stuck(cluster: Cluster) -> None:
    services = cluster.services
    render_id = _start(services, font_size=96)

    def a_chunk_on_w1() -> bool:
        return any(
            c.status == "rendering" and (c.lease_owner or "").startswith("w1@")
            for c in _chunks(services, render_id)
        )

    wait_for(a_chunk_on_w1, timeout=60, interval=0.01)
    killed_at = time.monotonic()
    kill(cluster.workers["w1"])
    try:
        orphans = [
            c.index
            for c in _chunks(services, render_id)
            if c.status == "rendering" and (c.lease_owner or "").startswith("w1@")
        ]
        timeout_s = services.limits.render_timeout_ms / 1000
        row = wait_for(_finished(services, render_id), timeout=2 * timeout_s, interval=0.1)
        assert time.monotonic() - killed_at < 2 * timeout_s
        assert row["status"] == "complete" or row["error"] == WORKER_LOST, row
        if row["status"] == "complete":
            after = {c.index: c for c in _chunks(services, render_id)}
            for index in orphans:  # w1's unfinished chunk was handed on to w2
                assert (after[index].lease_owner or "").startswith("w2@")
                assert after[index].attempts == 2
    finally:
        cluster.restart("w1")


def test_the_workers_deliver_a_webhook_once(cluster: Cluster) -> None:
    """No serve here: the reconcilers of the two workers deliver it, one attempt in all."""
    services = cluster.services
    user = make_user(services.db, f"hooked-{time.monotonic_ns()}")
    generation = make_generation(services.db, user, duration_in_frames=60)
    with receiver() as hook:
        request = RenderRequest(generation, 320, 180, webhook_url=hook.url, metadata={"n": 1})
        render, _ = start_render(services, user, request)
        wait_for(_finished(services, render.id), timeout=120)
        wait_for(lambda: _event_status(services, render.id) == "delivered", timeout=60)
    (received,) = hook.requests
    event = verify(received.body, received.headers, webhook_secret(services.settings))
    assert (event["type"], event["data"]["id"]) == ("render.completed", render.id)
    assert event["data"]["metadata"] == {"n": 1} and event["data"]["output_url"]


def _event_status(services: Services, render_id: str) -> str | None:
    with services.db.session() as session:
        statement = text("SELECT status FROM webhook_events WHERE render_id = :id")
        return session.execute(statement, {"id": render_id}).scalar_one_or_none()
