"""Never stuck: renders whose worker vanished, that ran out of time, or that nobody picked up.

A reconciler (a thread of the embedded pool; under Celery a thread in every worker and API
process, ``workers/reconcile.py``) calls
:func:`reconcile` every so often. It looks only at the database, so it works whoever runs the
renders and wherever they died:

* ``rendering`` past ``started_at + render_timeout_ms``: failed, "Render timed out after N
  seconds." (its worker, if alive, learns at its next write and stops);
* ``rendering`` with an expired lease (the worker was killed, the machine restarted): back to
  ``pending`` and dispatched again while ``attempts < limits.max_render_attempts``, else failed
  with :data:`~.failures.WORKER_LOST` and its quota slot refunded (our fault, not the user's);
* ``pending`` untouched for ``limits.pending_redispatch_ms`` (a dispatch lost with a process or
  a broker): dispatched again. Claiming is a compare-and-set, so a duplicate dispatch is
  harmless.

Every change is re-checked on the locked row, so two reconcilers (two ``serve`` processes on
one PostgreSQL) never act twice on one render.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, select

from renderlab import store
from renderlab.clock import now_ms
from renderlab.models import Render
from renderlab.pipeline.claim import HOST, parse_owner
from renderlab.pipeline.failures import WORKER_LOST, timed_out_message
from renderlab.pipeline.finish import fail_in
from renderlab.services import Services

log = logging.getLogger(__name__)

Dispatch = Callable[[str], None]
BATCH = 100
"""Renders looked at per kind per pass: bounds one pass's work; the next pass continues."""


@dataclass
class Reconciled:
    """What one pass did, by render id."""

    timed_out: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    redispatched: list[str] = field(default_factory=list)


def release_lost(
    services: Services,
    render_id: str,
    *,
    owner: str | None = None,
    expired_before: int | None = None,
    count_attempt: bool = True,
) -> Render | None:
    """Take a ``rendering`` render from a worker that is gone.

    Only acts while the render is still held by ``owner`` (when given) and its lease ended
    before ``expired_before`` (when given). Back to ``pending`` if attempts remain (the caller
    dispatches it), else failed with a refund. ``count_attempt=False`` (a clean shutdown) gives
    the attempt back: the render did not fail, we stopped it. Returns the changed render.
    """
    with services.db.transaction() as session:
        render = store.find_render_internal(session, render_id, lock=True)
        if render is None:
            return None
        if render.status != "rendering":
            return None
        if owner is not None and render.lease_owner != owner:
            return None
        if expired_before is not None and (render.lease_expires_at or 0) >= expired_before:
            return None
        attempts = render.attempts if count_attempt else max(0, render.attempts - 1)
        if attempts < services.limits.max_render_attempts:
            log.warning("render %s lost its worker %s; retrying", render_id, render.lease_owner)
            return store.update_render(
                session,
                render_id,
                status="pending",
                attempts=attempts,
                lease_owner=None,
                lease_expires_at=None,
            )
        log.error("render %s lost its worker %s again; failing", render_id, render.lease_owner)
        return fail_in(session, services, render, WORKER_LOST, refund=True)


def fail_timed_out(services: Services, render_id: str, *, started_before: int) -> Render | None:
    """Fail a ``rendering`` render whose current attempt started before ``started_before``."""
    with services.db.transaction() as session:
        render = store.find_render_internal(session, render_id, lock=True)
        if render is None:
            return None
        if render.status != "rendering" or (render.started_at or 0) >= started_before:
            return None
        return fail_in(session, services, render, timed_out_message(services.limits), refund=False)


def touch_pending(services: Services, render_id: str, *, untouched_since: int) -> bool:
    """Stamp a pending render as just dispatched, if nothing touched it since; True if so."""
    with services.db.transaction() as session:
        render = store.find_render_internal(session, render_id, lock=True)
        if render is None:
            return False
        if render.status != "pending" or render.updated_at >= untouched_since:
            return False
        store.update_render(session, render_id)
        return True


def reconcile(
    services: Services, dispatch: Dispatch, *, pending_age_ms: int | None = None
) -> Reconciled:
    """One pass over the three kinds of stuck render (see the module docstring).

    ``pending_age_ms`` overrides ``limits.pending_redispatch_ms`` (0 at start: everything
    pending is dispatched at once).
    """
    limits = services.limits
    now = services.clock()
    done = Reconciled()
    started_before = now - limits.render_timeout_ms
    for render_id in _ids(
        services, Render.status == "rendering", Render.started_at < started_before
    ):
        if fail_timed_out(services, render_id, started_before=started_before) is not None:
            done.timed_out.append(render_id)
    for render_id in _ids(services, Render.status == "rendering", Render.lease_expires_at < now):
        _settle(services, dispatch, release_lost(services, render_id, expired_before=now), done)
    # ``updated_at`` is stamped by the store with the wall clock, so it is compared with it.
    age = limits.pending_redispatch_ms if pending_age_ms is None else pending_age_ms
    untouched_since = now_ms() - age + (0 if age > 0 else 1)
    for render_id in _ids(
        services, Render.status == "pending", Render.updated_at < untouched_since
    ):
        if touch_pending(services, render_id, untouched_since=untouched_since):
            done.redispatched.append(render_id)
            dispatch(render_id)
    return done


def recover_orphans(services: Services, dispatch: Dispatch) -> Reconciled:
    """At start: renders whose lease holder was a process on this host that no longer exists
    (the previous ``serve`` and its workers) are taken back at once rather than after their
    lease runs out. Holders elsewhere, or whose pid is alive again, wait for the lease."""
    done = Reconciled()
    for render_id, owner in _owners(services):
        holder = parse_owner(owner)
        if holder is None or holder.host != HOST or pid_alive(holder.pid):
            continue
        _settle(services, dispatch, release_lost(services, render_id, owner=owner), done)
    return done


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists on this host (signal 0 checks without sending)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _settle(
    services: Services, dispatch: Dispatch, render: Render | None, done: Reconciled
) -> None:
    if render is None:
        return
    if render.status == "pending":
        done.retried.append(render.id)
        dispatch(render.id)
    else:
        done.failed.append(render.id)


def _ids(services: Services, *conditions: ColumnElement[bool]) -> list[str]:
    with services.db.session() as session:
        statement = select(Render.id).where(*conditions).order_by(Render.created_at).limit(BATCH)
        return list(session.execute(statement).scalars())


def _owners(services: Services) -> list[tuple[str, str | None]]:
    with services.db.session() as session:
        statement = select(Render.id, Render.lease_owner).where(Render.status == "rendering")
        return [(row.id, row.lease_owner) for row in session.execute(statement)]
