"""The shared render feed (no HTTP): one query a tick for all watchers, fan-out by render id,
no queries while nobody watches."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event

from renderlab import events, store
from renderlab.clock import now_ms
from renderlab.events import RenderFeed
from renderlab.limits import Limits
from renderlab.services import Services
from tests.factories import make_generation, make_render, make_user


class QueryCounter:
    def __init__(self, services: Services) -> None:
        self.count = 0
        self.engine = services.db.engine
        event.listen(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: Any) -> None:
        self.count += 1

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


@pytest.mark.parametrize("id_filter_max", [500, 0], ids=["ids-in-query", "all-recent-rows"])
def test_many_watchers_cost_one_query_a_tick(services: Services, id_filter_max: int) -> None:
    user = make_user(services.db)
    generation = make_generation(services.db, user)
    renders = [make_render(services.db, user, generation) for _ in range(100)]
    feed = RenderFeed(services.db, Limits(events_poll_ms=50, events_id_filter_max=id_filter_max))

    async def scenario() -> tuple[int, int, int]:
        subscriptions = [feed.subscribe(render_id) for render_id in renders]
        await asyncio.sleep(0.2)  # let the poller settle on the current rows
        for subscription in subscriptions:  # drop whatever the first ticks offered
            await subscription.next(0)
        counter = QueryCounter(services)
        ticks_before = feed.ticks
        await asyncio.sleep(0.3)
        idle_queries, idle_ticks = counter.count, feed.ticks - ticks_before
        with services.db.transaction() as session:
            for render_id in renders:
                store.update(session, render_id, now=now_ms(), status="rendering", progress=7)
        # (A loaded machine can deliver a first tick's "pending" after the drain above: each
        # watcher must see the update within the deadline, whatever came before it.)
        got = await asyncio.gather(*(_until(s, ("rendering", 7), 3.0) for s in subscriptions))
        counter.close()
        for subscription in subscriptions:
            subscription.close()
        assert all(got), f"{got.count(False)} of {len(got)} watchers missed the update"
        return idle_queries, idle_ticks, feed.subscriber_count

    try:
        idle_queries, idle_ticks, left = asyncio.run(scenario())
    finally:
        feed.stop()
    assert idle_ticks >= 3
    # One query per tick for 100 watchers (SQLite may add a BEGIN per read; nothing per watcher).
    assert idle_queries <= 2 * idle_ticks + 2
    assert left == 0


async def _until(subscription: Any, state: tuple[str, int], timeout: float) -> bool:
    """True once ``subscription`` offers ``(status, progress) == state`` within ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (left := deadline - loop.time()) > 0:
        snapshot = await subscription.next(left)
        if snapshot is not None and (snapshot.status, snapshot.progress) == state:
            return True
    return False


def test_no_queries_while_nobody_watches(services: Services) -> None:
    feed = RenderFeed(services.db, Limits(events_poll_ms=20))
    user = make_user(services.db)
    render_id = make_render(services.db, user, make_generation(services.db, user))

    async def scenario() -> None:
        subscription = feed.subscribe(render_id)
        await asyncio.sleep(0.1)
        subscription.close()
        await asyncio.sleep(0.1)  # a poll already under way when the watcher left may finish
        ticks = feed.ticks
        await asyncio.sleep(0.3)
        assert feed.ticks == ticks

    try:
        asyncio.run(scenario())
    finally:
        feed.stop()


def test_a_second_watcher_is_handed_the_latest_state(services: Services) -> None:
    feed = RenderFeed(services.db, Limits(events_poll_ms=20))
    user = make_user(services.db)
    render_id = make_render(services.db, user, make_generation(services.db, user))

    async def scenario() -> None:
        first = feed.subscribe(render_id)
        with services.db.transaction() as session:
            store.update(session, render_id, now=now_ms(), status="rendering", progress=30)
        # A tick between the subscription and the commit offers the state before it first.
        seen = await first.next(2.0)
        if seen is not None and seen.progress != 30:
            seen = await first.next(2.0)
        assert seen is not None and seen.progress == 30
        second = feed.subscribe(render_id)
        handed = await second.next(0.01)
        assert handed is not None and handed.progress == 30
        first.close()
        second.close()

    try:
        asyncio.run(scenario())
    finally:
        feed.stop()


def test_a_change_just_before_a_database_outage_is_sent_when_it_comes_back(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Polls fail while the database is away. If that lasts longer than the lookback, the
    first poll after it must still read back to the last one that succeeded: a render that
    ended just before the outage was otherwise never sent, and its stream waited forever
    (``bench/faults.py --fault pg-restart``)."""
    feed = RenderFeed(services.db, Limits(events_lookback_ms=1_000))
    monkeypatch.setattr(feed, "start", lambda: None)  # ticks by hand, no thread
    user = make_user(services.db)
    render_id = make_render(services.db, user, make_generation(services.db, user))

    async def scenario() -> None:
        subscription = feed.subscribe(render_id)
        feed.poll_once()
        assert (await subscription.next(1.0)) is not None  # its state now: pending
        with services.db.transaction() as session:
            store.update(session, render_id, now=now_ms(), status="rendering", progress=40)
        # The database goes away: the ticks of the next 3 s fail. Then one succeeds.
        later = events.now_ms() + 3_000
        monkeypatch.setattr(events, "now_ms", lambda: later)
        feed.poll_once()
        seen = await subscription.next(1.0)
        assert seen is not None and (seen.status, seen.progress) == ("rendering", 40)
        subscription.close()

    asyncio.run(scenario())
