"""The webhook outbox on real SQLite and PostgreSQL: committed with the caller's transaction
or not at all, leased by one deliverer at a time, every attempt recorded, retried on the
schedule with one ``webhook-id``, delivered to a real receiver on 127.0.0.1.

The two tables below are what ``renderlab.webhooks.outbox`` expects migration 0002 to create;
the test creates them itself until that migration lands.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook

from renderlab.db import Database
from renderlab.webhooks import Attempt, make_event, new_secret
from renderlab.webhooks.outbox import (
    DeliveryConfig,
    deliver_due,
    deliveries_of,
    enqueue,
    lease_due,
    record_attempt,
)
from tests.conftest import FakeClock
from tests.webhook_helpers import receiver

RENDER_ID = "01J0000000000000000000000R"
USER_ID = "01J0000000000000000000000U"


@pytest.fixture
def outbox_db(db: Database) -> Database:
    """The migrated database (revision 0002 holds the outbox tables)."""
    return db


def _enqueue(db: Database, url: str, now: int, event_type: str = "render.completed") -> str:
    event = make_event(event_type, {"id": RENDER_ID, "status": "complete"}, now)
    with db.transaction() as session:
        return enqueue(session, event, render_id=RENDER_ID, user_id=USER_ID, url=url, now=now)


def _status(db: Database, event_id: str) -> tuple[str, int]:
    with db.session() as session:
        row = session.execute(
            sa.text("SELECT status, attempts FROM webhook_events WHERE id = :id"), {"id": event_id}
        ).one()
    return row.status, row.attempts


def test_an_event_is_committed_with_its_transaction_or_not_at_all(outbox_db: Database) -> None:
    event = make_event("render.failed", {"id": RENDER_ID}, 0)
    with pytest.raises(RuntimeError), outbox_db.transaction() as session:
        enqueue(session, event, render_id=RENDER_ID, user_id=USER_ID, url="http://x/", now=0)
        raise RuntimeError("the render's terminal write failed")
    with outbox_db.transaction() as session:
        assert lease_due(session, owner="a", now=10, lease_ms=60_000, limit=10) == []


def test_a_receiver_failing_twice_gets_three_attempts_with_one_id(
    outbox_db: Database, clock: FakeClock
) -> None:
    secret = new_secret()
    config = DeliveryConfig(secret=secret, schedule=(5, 300), allow_private=True)
    with receiver([500, 503]) as hook:
        event_id = _enqueue(outbox_db, hook.url, clock())
        for step_ms in (0, 5_000, 300_000):
            clock.advance(step_ms)
            assert asyncio.run(deliver_due(outbox_db.transaction, "a", config, clock)) == 1
            # Not due again before its time:
            assert asyncio.run(deliver_due(outbox_db.transaction, "a", config, clock)) == 0
        assert len(hook.requests) == 3
    assert {r.headers["webhook-id"] for r in hook.requests} == {event_id}
    for request in hook.requests:
        assert Webhook(secret).verify(request.body, request.headers)["type"] == "render.completed"
    assert _status(outbox_db, event_id) == ("delivered", 3)
    with outbox_db.session() as session:
        listed = deliveries_of(session, RENDER_ID)
    assert [(d["attempt"], d["status_code"]) for d in listed] == [(3, 200), (2, 503), (1, 500)]
    assert listed[0]["error"] is None and listed[2]["error"] == "HTTP 500"
    assert {d["event_id"] for d in listed} == {event_id}
    assert listed[0]["type"] == "render.completed"


def test_the_schedule_spent_leaves_the_event_failed(outbox_db: Database, clock: FakeClock) -> None:
    config = DeliveryConfig(secret=new_secret(), schedule=(1,), allow_private=True)
    with receiver([500, 500, 500]) as hook:
        event_id = _enqueue(outbox_db, hook.url, clock())
        asyncio.run(deliver_due(outbox_db.transaction, "a", config, clock))
        clock.advance(1_000)
        asyncio.run(deliver_due(outbox_db.transaction, "a", config, clock))
        clock.advance(10_000_000)
        assert asyncio.run(deliver_due(outbox_db.transaction, "a", config, clock)) == 0
        assert len(hook.requests) == 2
    assert _status(outbox_db, event_id) == ("failed", 2)


def test_one_deliverer_at_a_time_holds_an_event(outbox_db: Database, clock: FakeClock) -> None:
    event_id = _enqueue(outbox_db, "http://203.0.113.9/", clock())
    with outbox_db.transaction() as session:
        (held,) = lease_due(session, owner="a", now=clock(), lease_ms=60_000, limit=10)
    with outbox_db.transaction() as session:
        assert lease_due(session, owner="b", now=clock(), lease_ms=60_000, limit=10) == []
    clock.advance(60_000)  # a died: its lease runs out and b takes the same attempt
    with outbox_db.transaction() as session:
        (again,) = lease_due(session, owner="b", now=clock(), lease_ms=60_000, limit=10)
    assert (held.event.id, held.attempt) == (again.event.id, again.attempt) == (event_id, 1)
    ok = Attempt(200, None, True)
    with outbox_db.transaction() as session:
        assert record_attempt(session, held, ok, owner="a", now=clock(), schedule=(5,)) is None
        assert record_attempt(session, again, ok, owner="b", now=clock(), schedule=(5,)) == (
            "delivered"
        )
    with outbox_db.session() as session:
        assert [d["attempt"] for d in deliveries_of(session, RENDER_ID)] == [1]


def test_a_url_that_turned_private_is_refused_at_delivery(
    outbox_db: Database, clock: FakeClock
) -> None:
    config = DeliveryConfig(secret=new_secret(), schedule=(5,), allow_private=False)
    with receiver() as hook:
        event_id = _enqueue(outbox_db, hook.url, clock())
        asyncio.run(deliver_due(outbox_db.transaction, "a", config, clock))
        assert hook.requests == []
    assert _status(outbox_db, event_id) == ("pending", 1)
    with outbox_db.session() as session:
        (attempt,) = deliveries_of(session, RENDER_ID)
    assert attempt["status_code"] is None and "loopback" in attempt["error"]


def test_the_delivery_loop_sends_what_is_enqueued_until_stopped(
    outbox_db: Database, tmp_path: Path
) -> None:
    from renderlab.clock import now_ms
    from renderlab.config import Settings
    from renderlab.limits import Limits
    from renderlab.webhooks.loop import delivery_config, run_delivery_loop

    settings = Settings(data_dir=tmp_path / "data", webhook_allow_private=True)
    config = delivery_config(settings, Limits(webhook_retry_schedule_s="1"))
    assert config.schedule == (1,) and config.secret.startswith("whsec_")

    async def scenario(hook_url: str, requests: list[object]) -> None:
        stop = asyncio.Event()
        loop = asyncio.create_task(
            run_delivery_loop(outbox_db.transaction, config, now_ms, stop, interval_s=0.05)
        )
        await asyncio.to_thread(_enqueue, outbox_db, hook_url, now_ms())
        deadline = asyncio.get_running_loop().time() + 30
        while len(requests) < 2:  # the 500, then the retry one second later
            assert asyncio.get_running_loop().time() < deadline, "not delivered in 30 s"
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(loop, 10)

    with receiver([500]) as hook:
        asyncio.run(scenario(hook.url, hook.requests))
    signed = [Webhook(config.secret).verify(r.body, r.headers) for r in hook.requests]
    assert [s["type"] for s in signed] == ["render.completed"] * 2


def test_a_refresh_hook_sends_the_render_as_it_is_now(
    outbox_db: Database, clock: FakeClock
) -> None:
    """The stored payload's signed URLs may have expired by a late retry: the pipeline's
    hook rebuilds the render object at each attempt; the id and type stay."""
    config = DeliveryConfig(secret=new_secret(), schedule=(5,), allow_private=True)
    calls: list[int] = []

    def refresh(_session: object, leased: Any) -> dict[str, Any]:
        calls.append(leased.attempt)
        return {"id": RENDER_ID, "output_url": f"http://fresh/{leased.attempt}"}

    with receiver([500]) as hook:
        event_id = _enqueue(outbox_db, hook.url, clock())
        asyncio.run(deliver_due(outbox_db.transaction, "a", config, clock, refresh))
        clock.advance(5_000)
        asyncio.run(deliver_due(outbox_db.transaction, "a", config, clock, refresh))
    sent = [Webhook(config.secret).verify(r.body, r.headers) for r in hook.requests]
    assert [s["data"]["output_url"] for s in sent] == ["http://fresh/1", "http://fresh/2"]
    assert {r.headers["webhook-id"] for r in hook.requests} == {event_id}
    assert calls == [1, 2]


def test_an_idle_pass_with_a_peek_takes_no_writer(outbox_db: Database, clock: FakeClock) -> None:
    """Every process runs a loop each second: with nothing due it must only read, never queue
    for SQLite's one writer (here held by another transaction the whole time)."""
    config = DeliveryConfig(secret=new_secret(), schedule=(5,), allow_private=True)
    with outbox_db.transaction():
        made = asyncio.run(
            asyncio.wait_for(
                deliver_due(outbox_db.transaction, "a", config, clock, peek=outbox_db.session), 10
            )
        )
    assert made == 0
    with receiver() as hook:
        _enqueue(outbox_db, hook.url, clock())
        run = deliver_due(outbox_db.transaction, "a", config, clock, peek=outbox_db.session)
        assert asyncio.run(run) == 1
    assert len(hook.requests) == 1
