"""The webhook outbox: pending events in the database, so no crash loses a delivery.

The pipeline calls :func:`enqueue` inside the transaction that ends a render: the event is
committed with the render's terminal status or not at all. Any process may then run
:func:`deliver_due` (the embedded loop of ``serve``, a Celery task, the reconciler): it
*leases* due events with a compare-and-set on ``lease_owner``/``lease_expires_at`` (no
``SKIP LOCKED`` needed, so SQLite and PostgreSQL behave alike), makes one attempt each outside
any transaction, and records it; only the lease holder may record, so two processes never
deliver the same attempt while a lease is valid. A deliverer that dies mid-attempt leaves a
lease that expires after ``lease_ms``; the attempt is then made again (at least once).

Written in SQL expressions over the models' tables (defined there and by migration ``0002``),
not ORM objects: a lease is one compare-and-set ``UPDATE``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from renderlab import metrics
from renderlab.ids import new_id
from renderlab.models import WebhookDelivery, WebhookEvent
from renderlab.webhooks.delivery import Attempt, deliver_async, next_attempt_at
from renderlab.webhooks.events import Event

# The models' tables: every statement here names each column it writes (``updated_at`` too),
# so the ORM-side defaults and ``onupdate`` never come into play.
events_table: sa.Table = WebhookEvent.__table__  # type: ignore[assignment]
deliveries_table: sa.Table = WebhookDelivery.__table__  # type: ignore[assignment]
E, D = events_table.c, deliveries_table.c
log = logging.getLogger("renderlab.webhooks")


@dataclass(frozen=True)
class Leased:
    """A due event this deliverer holds: make attempt number ``attempt`` of it."""

    event: Event
    url: str
    render_id: str
    attempt: int


def enqueue(
    session: Session, event: Event, *, render_id: str, user_id: str, url: str, now: int
) -> str:
    """Add ``event`` to the outbox in the caller's transaction; due at once. Returns its id."""
    session.execute(
        sa.insert(events_table).values(
            id=event.id,
            render_id=render_id,
            user_id=user_id,
            type=event.type,
            url=url,
            payload=event.payload(),
            status="pending",
            attempts=0,
            next_attempt_at=now,
            lease_owner=None,
            lease_expires_at=None,
            created_at=now,
            updated_at=now,
        )
    )
    return event.id


def _free(now: int) -> sa.ColumnElement[bool]:
    return sa.or_(E.lease_expires_at.is_(None), E.lease_expires_at <= now)


def any_due(session: Session, now: int) -> bool:
    """Whether some event is due and unleased: a cheap read a loop makes before it takes the
    writer (SQLite has one) to lease anything."""
    due = sa.and_(E.status == "pending", E.next_attempt_at <= now, _free(now))
    return session.execute(sa.select(E.id).where(due).limit(1)).first() is not None


def lease_due(session: Session, *, owner: str, now: int, lease_ms: int, limit: int) -> list[Leased]:
    """Claim up to ``limit`` due, unleased events for ``owner`` (commit before delivering).

    Each claim is an ``UPDATE ... WHERE`` the lease is still free: of two deliverers that read
    the same row, exactly one updates it.
    """
    due = sa.and_(E.status == "pending", E.next_attempt_at <= now, _free(now))
    candidates = session.execute(
        sa.select(E.id, E.url, E.render_id, E.payload, E.attempts)
        .where(due)
        .order_by(E.next_attempt_at)
        .limit(limit)
    ).all()
    leased = []
    for row in candidates:
        claimed = session.execute(
            sa.update(events_table)
            .where(E.id == row.id, due)
            .values(lease_owner=owner, lease_expires_at=now + lease_ms, updated_at=now)
        )
        if _rowcount(claimed) == 1:
            event = Event.of(row.id, row.payload)
            leased.append(Leased(event, row.url, row.render_id, row.attempts + 1))
    return leased


def record_attempt(
    session: Session,
    leased: Leased,
    attempt: Attempt,
    *,
    owner: str,
    now: int,
    schedule: tuple[int, ...],
) -> str | None:
    """Record one attempt and move the event on: ``delivered``, ``pending`` (due again on the
    schedule) or ``failed`` (schedule spent). Returns the new status, or None when ``owner``
    no longer holds the lease (it expired and another deliverer took the event)."""
    due_again = None if attempt.ok else next_attempt_at(leased.attempt, now, schedule)
    status = "delivered" if attempt.ok else ("pending" if due_again is not None else "failed")
    moved = session.execute(
        sa.update(events_table)
        .where(
            E.id == leased.event.id,
            E.lease_owner == owner,
            E.attempts == leased.attempt - 1,
        )
        .values(
            status=status,
            attempts=leased.attempt,
            next_attempt_at=due_again if due_again is not None else now,
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        )
    )
    if _rowcount(moved) != 1:
        return None
    session.execute(
        sa.insert(deliveries_table).values(
            id=new_id(),
            event_id=leased.event.id,
            render_id=leased.render_id,
            attempt=leased.attempt,
            status_code=attempt.status_code,
            error=attempt.error,
            at=now,
        )
    )
    return status


def deliveries_of(session: Session, render_id: str) -> list[dict[str, Any]]:
    """The attempts of a render's webhooks, newest first, as ``GET .../webhook-deliveries``
    lists them (``at`` in epoch ms: the route formats it)."""
    rows = session.execute(
        sa.select(D.event_id, E.type, D.attempt, D.status_code, D.error, D.at)
        .select_from(deliveries_table.join(events_table, D.event_id == E.id))
        .where(D.render_id == render_id)
        .order_by(D.at.desc(), D.attempt.desc())
    ).all()
    return [dict(row._mapping) for row in rows]


@dataclass(frozen=True)
class DeliveryConfig:
    secret: str
    schedule: tuple[int, ...]
    allow_private: bool = False
    timeout_s: float = 10.0
    lease_ms: int = 60_000
    batch: int = 20


Transaction = Callable[[], Any]
"""``Database.transaction``: a context manager yielding a Session that commits on exit."""


Refresh = Callable[[Session, Leased], dict[str, Any] | None]
"""Re-reads the render of a leased event and returns its render object as of now (fresh
signed URLs: the stored ones may have expired by a late retry), or None to send the stored
one (the render was deleted)."""


async def deliver_due(
    transaction: Transaction,
    owner: str,
    config: DeliveryConfig,
    clock: Callable[[], int],
    refresh: Refresh | None = None,
    peek: Transaction | None = None,
) -> int:
    """One pass of a delivery loop: lease what is due, attempt each (concurrently, outside
    any transaction), record each. Returns how many attempts were made. With ``peek`` (a
    read session, ``Database.session``), an idle pass only reads.

    Blocking database work runs in a thread so the caller's event loop keeps serving.
    """

    def idle() -> bool:
        if peek is None:
            return False
        with peek() as session:
            return not any_due(session, clock())

    if await asyncio.to_thread(idle):
        return 0

    def lease() -> list[Leased]:
        with transaction() as session:
            leased = lease_due(
                session, owner=owner, now=clock(), lease_ms=config.lease_ms, limit=config.batch
            )
            return [_refreshed(session, item, refresh) for item in leased]

    leased = await asyncio.to_thread(lease)

    async def one(item: Leased) -> None:
        attempt = await deliver_async(
            item.event,
            item.url,
            config.secret,
            allow_private=config.allow_private,
            timeout_s=config.timeout_s,
        )

        def record() -> None:
            with transaction() as session:
                status = record_attempt(
                    session, item, attempt, owner=owner, now=clock(), schedule=config.schedule
                )
            _count(item, attempt, status)

        await asyncio.to_thread(record)

    await asyncio.gather(*(one(item) for item in leased))
    return len(leased)


_OUTCOMES = {"delivered": "delivered", "pending": "retrying", "failed": "failed"}


def _count(item: Leased, attempt: Attempt, status: str | None) -> None:
    """The attempt in the metrics and the log (not when another deliverer took the event)."""
    if status is None:
        log.warning(
            "webhook %s: lease lost before attempt %d was recorded", item.event.id, item.attempt
        )
        return
    metrics.webhook_delivery(_OUTCOMES[status])
    level = logging.INFO if attempt.ok else logging.WARNING
    log.log(
        level,
        "webhook %s (%s) of render %s, attempt %d: %s",
        item.event.id,
        item.event.type,
        item.render_id,
        item.attempt,
        attempt.status_code if attempt.ok else f"{attempt.error}; now {status}",
    )


def _refreshed(session: Session, item: Leased, refresh: Refresh | None) -> Leased:
    data = refresh(session, item) if refresh is not None else None
    if data is None:
        return item
    event = Event(item.event.id, item.event.type, item.event.timestamp, data)
    return Leased(event, item.url, item.render_id, item.attempt)


def _rowcount(result: sa.Result[Any]) -> int:
    """Rows an UPDATE changed (``Session.execute`` is typed as returning any ``Result``)."""
    return cast(sa.CursorResult[Any], result).rowcount
