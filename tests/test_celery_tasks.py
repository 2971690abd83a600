"""The cluster tasks run in this process, on SQLite and PostgreSQL, with messages through the
machine's Redis: each message is taken off the queue and executed here (``Task.apply``), so the
flow start -> chunks -> join, retries of transient failures and recovery of a join whose worker
died are checked without worker processes or timing luck."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from celery import Celery
from celery._state import _set_current_app, get_current_app
from sqlalchemy.exc import OperationalError

from renderlab.limits import Limits
from renderlab.pipeline import chunked, lifecycle
from renderlab.pipeline.failures import STORAGE_FAILED
from renderlab.pipeline.recover import reconcile
from renderlab.pipeline.start import RenderRequest, start_render
from renderlab.services import Services
from renderlab.storage import StorageError, StorageUnreachable
from renderlab.workers import tasks
from renderlab.workers.celery_app import CHUNK, JOIN, START, make_celery, send
from renderlab.workers.dispatch import CeleryDispatcher
from tests.celery_helpers import REDIS_BROKER, purge_queue, require_redis, unique_queue
from tests.factories import make_generation, make_user
from tests.pipeline_helpers import ffprobe, full_row, remaining_quota, unwritable_storage_url

LIMITS = Limits(chunk_frames=20, min_chunk_frames=20, lease_ms=500, celery_retry_delay_s=0)


@dataclass
class Local:
    app: Celery
    svc: Services
    queue: str

    def run_queue(self) -> list[str]:
        """Execute every message on the queue, in delivery order, as one worker would."""
        names: list[str] = []
        with self.app.connection_for_read() as connection:
            bound = self.app.amqp.queues[self.queue].bind(connection.default_channel)
            while (message := bound.get(no_ack=True)) is not None:
                name = message.headers["task"]
                self.app.tasks[name].apply(args=message.payload[0])
                names.append(name)
        return names

    def start(self, frames: int = 60) -> tuple[str, str]:
        user = make_user(self.svc.db)
        generation = make_generation(self.svc.db, user, style="fade-in", duration_in_frames=frames)
        render, _ = start_render(self.svc, user, RenderRequest(generation, 320, 180))
        return user, render.id


def local_cluster(services: Services, storage_url: str) -> Iterator[Local]:
    require_redis()
    queue = unique_queue()
    settings = services.settings.model_copy(
        update={"broker_url": REDIS_BROKER, "storage_url": storage_url}
    )
    app = make_celery(settings, LIMITS, queue=queue)
    previous = get_current_app()
    _set_current_app(app)  # the tasks build this process's services from the current app
    tasks._services = None
    svc = tasks.services()
    svc.dispatcher = CeleryDispatcher(app, svc)
    try:
        yield Local(app, svc, queue)
    finally:
        tasks._services = None
        _set_current_app(previous)
        svc.db.dispose()
        purge_queue(REDIS_BROKER, queue)


@pytest.fixture
def local(services: Services, tmp_path: Path) -> Iterator[Local]:
    yield from local_cluster(services, (tmp_path / "storage").as_uri())


@pytest.fixture
def broken_storage(services: Services, tmp_path: Path) -> Iterator[Local]:
    yield from local_cluster(services, unwritable_storage_url(tmp_path))


def test_a_render_flows_from_start_through_chunks_to_join(local: Local, tmp_path: Path) -> None:
    _, render_id = local.start()

    assert local.run_queue() == [START, CHUNK, CHUNK, CHUNK, JOIN]

    row = full_row(local.svc.db, render_id)
    assert (row["status"], row["progress"], row["attempts"]) == ("complete", 100, 1)
    probe = ffprobe(local.svc.storage.get_file(row["output_key"], tmp_path / "out.mp4"))
    assert int(probe["nb_read_packets"]) == 60
    assert not local.svc.storage.exists(chunked.segment_key(render_id, 0)), "segments kept"


def test_duplicated_messages_do_nothing(local: Local) -> None:
    _, render_id = local.start()
    send(local.app, START, render_id)  # a redispatch that raced the first start
    names = local.run_queue()
    assert names.count(START) == 2 and names.count(CHUNK) == 3 and names.count(JOIN) == 1
    assert full_row(local.svc.db, render_id)["attempts"] == 1, "the second start did nothing"
    before = chunked.chunk_workers(local.svc, render_id)

    # A redelivered chunk and join after completion: nothing changes.
    send(local.app, CHUNK, render_id, "job:stale", 0)
    send(local.app, JOIN, render_id, "job:stale")
    local.run_queue()

    assert full_row(local.svc.db, render_id)["status"] == "complete"
    assert chunked.chunk_workers(local.svc, render_id) == before


def test_a_transient_storage_failure_is_retried_then_fails_with_a_refund(
    broken_storage: Local, caplog: pytest.LogCaptureFixture
) -> None:
    user, render_id = broken_storage.start()
    with caplog.at_level(logging.WARNING, logger="renderlab.workers.tasks"):
        broken_storage.run_queue()

    row = full_row(broken_storage.svc.db, render_id)
    assert (row["status"], row["error"], row["quota_refunded"]) == ("failed", STORAGE_FAILED, True)
    assert remaining_quota(broken_storage.svc, user) == LIMITS.renders_per_hour
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == LIMITS.celery_max_retries, "a transient failure is retried, a bit"


def test_a_database_away_longer_than_the_quick_retries_is_waited_out(
    local: Local, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PostgreSQL restart outlasts ``celery_max_retries`` quick retries. A chunk task that gave
    up then dropped the chunk's only message, and the render sat until its timeout failed it
    (``bench/faults.py --fault pg-restart``); database errors are retried for longer."""
    _, render_id = local.start()
    real = chunked.claim_chunk
    calls = {"failed": 0}

    def database_away(*args: object, **kwargs: object) -> object:
        if calls["failed"] < LIMITS.celery_max_retries + 3:
            calls["failed"] += 1
            reason = Exception("the database system is shutting down")
            raise OperationalError("SELECT", {}, reason)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(chunked, "claim_chunk", database_away)
    local.run_queue()

    assert calls["failed"] == LIMITS.celery_max_retries + 3
    assert full_row(local.svc.db, render_id)["status"] == "complete"
    assert tasks.retries_for(LIMITS, OSError()) == LIMITS.celery_max_retries


def test_an_unreachable_store_is_retried_for_half_the_timeout_a_refusal_is_not() -> None:
    """An S3 endpoint that does not answer may be back in seconds (``bench/faults.py --fault
    s3-down`` failed 7 renders of 50 with two quick retries); a refusal (credentials, a full
    disk) will not mend itself, and keeps the quick retries."""
    delay = max(LIMITS.celery_retry_delay_s, 0.1)
    unreachable = tasks.retries_for(LIMITS, StorageUnreachable("no answer"))
    assert unreachable * delay >= LIMITS.render_timeout_ms / 2000
    assert (unreachable - LIMITS.celery_max_retries) * delay < LIMITS.render_timeout_ms / 1000
    assert tasks.retries_for(LIMITS, StorageError("refused")) == LIMITS.celery_max_retries


def test_a_start_that_cannot_give_its_claim_back_plans_it_on_the_retry(
    local: Local, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database went away between the claim and the plan, so the render could not be given
    back either: it stayed claimed by a job nobody ran, until its timeout failed it (seen with
    ``bench/faults.py --fault pg-restart``). The retry plans it for the same job instead."""
    _, render_id = local.start()
    real_plan, real_release = chunked.plan, lifecycle.release
    away = {"plan": 1, "release": 1}

    def database_away(what: str, real: Callable[..., object]) -> Callable[..., object]:
        def call(*args: object, **kwargs: object) -> object:
            if away[what]:
                away[what] -= 1
                raise OperationalError("UPDATE", {}, Exception("terminating connection"))
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(chunked, "plan", database_away("plan", real_plan))
    monkeypatch.setattr(lifecycle, "release", database_away("release", real_release))
    names = local.run_queue()

    assert away == {"plan": 0, "release": 0}
    row = full_row(local.svc.db, render_id)
    assert (row["status"], row["attempts"]) == ("complete", 1), "planned by the first claim"
    assert names.count(CHUNK) == 3 and names.count(JOIN) == 1


def run_all_but_the_join(local: Local) -> tuple[str, str]:
    """Run the queue, taking the join off it unrun: its ``(render_id, owner)``."""
    join: tuple[str, str] | None = None
    with local.app.connection_for_read() as connection:
        bound = local.app.amqp.queues[local.queue].bind(connection.default_channel)
        while (message := bound.get(no_ack=True)) is not None:
            if message.headers["task"] == JOIN:
                join = tuple(message.payload[0])  # type: ignore[assignment]
                continue
            local.app.tasks[message.headers["task"]].apply(args=message.payload[0])
    assert join is not None
    return join


def recovered_by_the_reconciler(local: Local, render_id: str) -> None:
    assert full_row(local.svc.db, render_id)["status"] == "rendering"
    time.sleep(LIMITS.lease_ms / 1000 + 0.1)
    done = reconcile(local.svc, lambda id_: send(local.app, START, id_))

    assert done.retried == [render_id]
    assert local.run_queue() == [START, JOIN], "the segments were kept: only the join runs"
    row = full_row(local.svc.db, render_id)
    assert (row["status"], row["attempts"]) == ("complete", 2)


def test_a_join_whose_worker_died_is_joined_again(local: Local) -> None:
    _, render_id = local.start()
    render_id_, owner = run_all_but_the_join(local)
    # A worker took the join, shortened the job's lease (as the join does first) and was
    # killed: the message is gone and the lease runs out.
    lifecycle.progress(local.svc, render_id_, owner)
    recovered_by_the_reconciler(local, render_id)


def test_a_join_the_broker_would_not_take_is_left_to_the_reconciler(local: Local) -> None:
    _, render_id = local.start()
    _, owner = run_all_but_the_join(local)
    settings = local.svc.settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    unreachable = make_celery(settings, LIMITS, queue=local.queue)

    tasks.send_join(unreachable, local.svc, render_id, owner)

    recovered_by_the_reconciler(local, render_id)
