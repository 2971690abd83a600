"""Claiming a render with a lease, so no render runs twice at once and none is stuck forever.

A worker (an embedded render process, a Celery task) takes a render by a compare-and-set,
``pending -> rendering``, on the locked row: of two workers handed the same render (a
redelivered message, a redispatch) exactly one wins. The winner holds a lease: its
``lease_owner`` and ``lease_expires_at = now + limits.lease_ms``, renewed by every progress
write and by a heartbeat. A worker that dies stops renewing; :mod:`renderlab.pipeline.recover`
finds the expired lease and runs the render again or fails it.

``lease_owner`` is ``host:pid:token``: the process that holds the render is visible in the
database (operators and tests can find, and signal, it) and a restarted ``serve`` can tell that
a lease's holder on this host is gone without waiting for it to expire.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from sqlalchemy.orm import Session

from renderlab import store
from renderlab.models import Render
from renderlab.pipeline.failures import LostClaim
from renderlab.services import Services

HOST = socket.gethostname()


def lease_owner(token: str, pid: int | None = None) -> str:
    """The lease holder's name: this host, the worker process id, a token unique to the run."""
    return f"{HOST}:{pid if pid is not None else os.getpid()}:{token}"


@dataclass(frozen=True)
class LeaseOwner:
    host: str
    pid: int
    token: str


def parse_owner(owner: str | None) -> LeaseOwner | None:
    """``host:pid:token`` back into its parts; None for anything else (another scheme)."""
    if not owner:
        return None
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return LeaseOwner(parts[0], int(parts[1]), parts[2])


def claim_render(
    services: Services,
    render_id: str,
    *,
    owner: str,
    job_id: str,
    lease_ms: int | None = None,
) -> Render | None:
    """Take a pending render for ``owner``: the render as claimed, or None if it is not pending
    (already claimed, finished, cancelled, or unknown).

    Sets ``status=rendering``, ``attempts += 1``, the lease, ``started_at`` (the render timeout
    counts from here, per attempt), ``render_id`` (the job id) and ``bucket_name``. The lease
    lasts ``lease_ms`` (default ``limits.lease_ms``).
    """
    bucket = services.storage.bucket_name
    now = services.clock()
    with services.db.transaction() as session:
        render = store.find_render_internal(session, render_id, lock=True)
        if render is None:
            return None
        if render.status != "pending":
            return None
        return store.update_render(
            session,
            render_id,
            status="rendering",
            attempts=render.attempts + 1,
            lease_owner=owner,
            lease_expires_at=now + (lease_ms if lease_ms is not None else services.limits.lease_ms),
            heartbeat_at=now,
            started_at=now,
            render_id=job_id,
            bucket_name=bucket,
        )


def owned_render(session: Session, render_id: str, owner: str) -> Render:
    """The render, locked, if ``owner`` still holds it; else :class:`LostClaim`.

    Every write a worker makes goes through this check in the same transaction, so a worker
    whose render was cancelled, timed out or handed on can never overwrite what decided that.
    """
    try:
        render = store.get_render_internal(session, render_id, lock=True)
    except store.NotFound:
        raise LostClaim(render_id, "deleted") from None
    if render.status != "rendering" or render.lease_owner != owner:
        raise LostClaim(render_id, render.status)
    return render


def renew_lease(
    services: Services, render_id: str, owner: str, *, progress: int | None = None
) -> Render:
    """Extend ``owner``'s lease and, if given and higher than stored, raise the progress.

    Raises :class:`LostClaim` if the render is no longer ``owner``'s. Progress is only ever
    written upwards: a retried attempt starts from zero frames but the row keeps the earlier
    attempt's value until the new one passes it, so users never see the bar go back.
    """
    now = services.clock()
    with services.db.transaction() as session:
        render = owned_render(session, render_id, owner)
        changes: dict[str, int] = {
            "lease_expires_at": now + services.limits.lease_ms,
            "heartbeat_at": now,
        }
        if progress is not None and progress > render.progress:
            changes["progress"] = progress
        return store.update_render(session, render_id, **changes)
