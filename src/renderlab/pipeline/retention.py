"""Retention: outputs and posters are kept ``limits.output_ttl_s`` after a render completes.

Two moments, in the lifecycle's way:

* at the end (an :data:`.lifecycle.AT_END` hook, in the completing transaction):
  ``expires_at = completed_at + output_ttl_s`` (left null when the TTL is 0: kept forever);
* ``expire`` (:func:`expire_render`, called by the reconciler, :func:`.recover.reconcile`, in
  both layouts): a complete render past its ``expires_at`` is marked ``output_expired`` in one
  transaction, and after the commit its objects are removed from storage unless another render
  still references them (the rule of :func:`.delete.unreferenced`).

The render row stays: its owner still sees it, with ``output_url`` and ``poster_url`` null, and
``download-url`` answers 410 ``output_expired``.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from renderlab import store
from renderlab.models import Render, RenderStatus
from renderlab.pipeline import lifecycle
from renderlab.pipeline.delete import Doomed, remove_objects, stored_keys, unreferenced
from renderlab.services import Services

BATCH = 100
"""Expired renders handled per reconciler pass; the next pass continues."""


def set_expiry(
    session: Session, services: Services, render: Render, outcome: lifecycle.Outcome
) -> None:
    """The AT_END hook: a completed render's output expires ``output_ttl_s`` from now."""
    ttl_s = services.limits.output_ttl_s
    if outcome.status != RenderStatus.COMPLETE or ttl_s <= 0:
        return
    completed_at = render.completed_at or services.clock()
    store.update(session, render.id, now=services.clock(), expires_at=completed_at + ttl_s * 1000)


def expired_ids(services: Services, now: int) -> list[str]:
    """Complete renders whose output is past its ``expires_at`` and not yet removed."""
    with services.db.session() as session:
        statement = (
            select(Render.id)
            .where(
                Render.expires_at < now,
                Render.output_expired.is_(False),
                Render.status == RenderStatus.COMPLETE,
            )
            .order_by(Render.expires_at)
            .limit(BATCH)
        )
        return list(session.execute(statement).scalars())


def expire_render(services: Services, render_id: str, *, now: int) -> bool:
    """Mark one render's output expired (if it still is due) and remove its objects that no
    other live render references; True when this call expired it."""
    with services.db.transaction() as session:
        render = lifecycle.locked(session, render_id, status=RenderStatus.COMPLETE)
        if render is None or render.output_expired or (render.expires_at or now) >= now:
            return False
        store.update(session, render_id, now=services.clock(), output_expired=True)
        doomed = Doomed(keys=unreferenced(session, stored_keys(render), besides=[render_id]))
    remove_objects(services, doomed)
    return True


def expire_due(services: Services) -> list[str]:
    """One pass: every render due, expired (what the reconciler runs)."""
    now = services.clock()
    return [
        render_id
        for render_id in expired_ids(services, now)
        if expire_render(services, render_id, now=now)
    ]


lifecycle.AT_END.append(set_expiry)


class OutputExpired(Exception):
    """The render completed, but its output is gone (expired, or removed from storage)."""


def check_downloadable(services: Services, user_id: str, render_id: str) -> None:
    """:class:`OutputExpired` for the owner's complete render whose output is gone: marked
    expired, or missing from storage (an S3 bucket lifecycle rule removes objects without
    telling the database). Other states are left to the download URL's own checks."""
    with services.db.read_one() as connection:
        render = store.find(connection, render_id, user_id=user_id)
    if render is None or render.status != RenderStatus.COMPLETE or not render.output_key:
        return
    if render.output_expired or not services.storage.exists(render.output_key):
        raise OutputExpired(
            "This render's output was deleted when its retention period ended; render it "
            "again to get a new one."
        )
