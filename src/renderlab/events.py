"""The render change feed behind ``GET /v1/renders/{id}/events``: one shared watcher a process.

Renders are updated by worker processes (embedded or Celery, possibly on other machines) that
share nothing with the API process but the database. So the API learns about changes the one
way that works on every database and every topology: it polls ``renders`` by ``updated_at``
(index ``by_updated``). What keeps that cheap is that a process has exactly one poller, however
many clients watch: each tick is ONE query for every row changed recently, fanned out in memory
to the subscribers of those rows. A thousand open streams cost a thousand small objects, not a
thousand queries a tick, and a process with no watchers does not query at all.

Each tick looks back ``events_lookback_ms`` rather than only since the previous tick: a row's
``updated_at`` is stamped before its transaction commits, so a slow commit (or a worker whose
clock is a little behind) can make a change visible with a timestamp older than the previous
tick. Rows seen again are recognised by their visible content and not sent twice. After ticks
that failed (the database away for longer than the lookback), the next one reads from the last
tick that succeeded instead, or a render that ended just before the outage would never be sent.

A subscription is a one-slot mailbox, not a queue: a slow client is only ever owed the newest
state of its render, so memory per watcher is bounded and a terminal status is never stuck
behind a backlog of stale progress values.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

from sqlalchemy import select

from renderlab.clock import Clock, now_ms
from renderlab.db import Database
from renderlab.limits import Limits
from renderlab.models import Render
from renderlab.store.renders import RENDER_COLUMNS, RenderSnapshot

log = logging.getLogger(__name__)


class Subscription:
    """One watcher of one render: the newest snapshot the feed has seen, and a wake-up.

    Created and read on the event loop; the feed's thread hands snapshots over with
    ``call_soon_threadsafe``.
    """

    def __init__(self, feed: RenderFeed, render_id: str, loop: asyncio.AbstractEventLoop) -> None:
        self.render_id = render_id
        self._feed = feed
        self._loop = loop
        self._latest: RenderSnapshot | None = None
        self._ready = asyncio.Event()

    def _offer(self, snapshot: RenderSnapshot) -> None:
        self._latest = snapshot
        self._ready.set()

    def offer_threadsafe(self, snapshot: RenderSnapshot) -> None:
        # A closed loop (RuntimeError) means nobody is listening any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._offer, snapshot)

    async def next(self, timeout: float) -> RenderSnapshot | None:
        """The newest snapshot not yet returned, or None if nothing arrived within ``timeout``."""
        if not self._ready.is_set():
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except TimeoutError:
                return None
        self._ready.clear()
        return self._latest

    def close(self) -> None:
        self._feed.unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class RenderFeed:
    """The process's single poller of render changes and its subscribers.

    ``subscribe`` starts the polling thread on first use, so an app that never opens a stream
    never polls; ``stop`` ends it (the app's lifespan calls it on shutdown).
    """

    def __init__(self, db: Database, limits: Limits, clock: Clock = now_ms) -> None:
        self._db = db
        self._clock = clock  # the clock the store stamps ``updated_at`` with
        self._interval_s = limits.events_poll_ms / 1000
        self._lookback_ms = limits.events_lookback_ms
        self._id_filter_max = limits.events_id_filter_max
        self._lock = threading.Lock()
        self._subscribers: dict[str, set[Subscription]] = {}
        self._last_sent: dict[str, RenderSnapshot] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.ticks = 0  # polls that ran a query (for tests and benches)
        self._last_ok_ms: int | None = None  # when the last tick that succeeded started

    # -- subscribers (event loop side) ------------------------------------------------------

    def subscribe(self, render_id: str) -> Subscription:
        """Watch ``render_id`` (call on the event loop).

        A change made after the caller read the render but before it subscribed is not lost:
        either another subscription of the same render already received it (and it is handed
        over here), or the next tick finds it, as each tick looks back ``events_lookback_ms``
        and this render has no "already sent" state yet.
        """
        subscription = Subscription(self, render_id, asyncio.get_running_loop())
        with self._lock:
            self._subscribers.setdefault(render_id, set()).add(subscription)
            known = self._last_sent.get(render_id)
        if known is not None:
            # Another stream already watches this render: hand over the newest state the feed
            # has sent, in case it changed after the caller read it (the caller drops it if not).
            subscription._offer(known)
        self.start()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            watchers = self._subscribers.get(subscription.render_id)
            if watchers is None:
                return
            watchers.discard(subscription)
            if not watchers:
                del self._subscribers[subscription.render_id]
                self._last_sent.pop(subscription.render_id, None)

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return sum(len(watchers) for watchers in self._subscribers.values())

    # -- the poller (its own thread) --------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="render-feed", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        failures = 0
        while not self._stopping.wait(self._interval_s * (1 + min(failures, 50))):
            try:
                self.poll_once()
                failures = 0
            except Exception:  # the database is away: say so once a streak, keep trying
                if failures == 0:
                    log.exception("render feed: polling renders failed; retrying")
                failures += 1

    def poll_once(self) -> int:
        """One tick: one query for every render changed within the lookback, fanned out to
        that render's subscribers. Returns how many subscriptions were offered a snapshot."""
        started = self._clock()
        with self._lock:
            if not self._subscribers:
                self._last_ok_ms = started  # nobody is owed anything from before now
                return 0
            watched = (
                list(self._subscribers) if len(self._subscribers) <= self._id_filter_max else None
            )
        since = min(started, self._last_ok_ms or started) - self._lookback_ms
        statement = select(*RENDER_COLUMNS).where(Render.updated_at >= since)
        if watched is not None:
            # Few watched renders: ask only for them, so a busy server's other changes (hundreds
            # of new renders a second) are not read again on every tick of the look-back.
            statement = statement.where(Render.id.in_(watched))
        with self._db.session() as session:
            rows = session.execute(statement).all()
        self._last_ok_ms = started
        self.ticks += 1
        offered = 0
        with self._lock:
            for row in rows:
                watchers = self._subscribers.get(row.id)
                if not watchers:
                    continue
                snapshot = RenderSnapshot(*row)
                previous = self._last_sent.get(row.id)
                if previous is not None and previous.visible() == snapshot.visible():
                    continue
                self._last_sent[row.id] = snapshot
                for subscription in watchers:
                    subscription.offer_threadsafe(snapshot)
                    offered += 1
        return offered
