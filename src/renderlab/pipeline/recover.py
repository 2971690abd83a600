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
  harmless;
* ``complete`` past its ``expires_at`` (retention, ``limits.output_ttl_s``): its output and
  poster are removed unless another render still references them, and it is marked
  ``output_expired`` (:func:`.retention.expire_due`).

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
from renderlab.models import Render, RenderStatus
from renderlab.pipeline import failures, lifecycle, retention
from renderlab.pipeline.claim import HOST, parse_owner
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
    expired: list[str] = field(default_factory=list)


def fail_timed_out(services: Services, render_id: str, *, started_before: int) -> Render | None:
    """Fail a ``rendering`` render whose current attempt started before ``started_before``."""
    with services.db.transaction() as session:
        render = lifecycle.locked(session, render_id, status=RenderStatus.RENDERING)
        if render is None or (render.started_at or 0) >= started_before:
            return None
        outcome = lifecycle.Outcome.failed(failures.timed_out(services.limits))
        return lifecycle.finish(session, services, render, outcome)


def touch_pending(services: Services, render_id: str, *, untouched_since: int) -> bool:
    """Stamp a pending render as just dispatched, if nothing touched it since; True if so."""
    with services.db.transaction() as session:
        render = lifecycle.locked(session, render_id, status=RenderStatus.PENDING)
        if render is None or render.updated_at >= untouched_since:
            return False
        store.update(session, render_id, now=services.clock())
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
        services, Render.status == RenderStatus.RENDERING, Render.started_at < started_before
    ):
        if fail_timed_out(services, render_id, started_before=started_before) is not None:
            done.timed_out.append(render_id)
    for render_id in _ids(
        services, Render.status == RenderStatus.RENDERING, Render.lease_expires_at < now
    ):
        released = lifecycle.release(services, render_id, expired_before=now)
        _redispatch(dispatch, released, done)
    age = limits.pending_redispatch_ms if pending_age_ms is None else pending_age_ms
    untouched_since = now - age + (0 if age > 0 else 1)
    for render_id in _ids(
        services, Render.status == RenderStatus.PENDING, Render.updated_at < untouched_since
    ):
        if touch_pending(services, render_id, untouched_since=untouched_since):
            done.redispatched.append(render_id)
            dispatch(render_id)
    done.expired = retention.expire_due(services)
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
        _redispatch(dispatch, lifecycle.release(services, render_id, owner=owner), done)
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


def _redispatch(dispatch: Dispatch, render: Render | None, done: Reconciled) -> None:
    """Count what :func:`~.lifecycle.release` did; a render back to pending is sent again."""
    if render is None:
        return
    if render.status == RenderStatus.PENDING:
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
        statement = select(Render.id, Render.lease_owner).where(
            Render.status == RenderStatus.RENDERING
        )
        return [(row.id, row.lease_owner) for row in session.execute(statement)]
