"""The life of a render, once: every status change is one of these functions.

``pending -> rendering -> complete | failed`` (and ``rendering -> pending`` when a lost
worker's render is handed out again). Each moment below is ONE transaction that locks the
render row and re-checks its status (and lease holder) before it writes: a compare-and-set, so
of two processes racing for a render (a redelivered message, a cancel against a completing
worker, two reconcilers) exactly one acts and the other finds nothing to do.

The embedded supervisor and the Celery tasks only decide *who* runs a claimed piece and
*when*; they never write a status themselves: they call these.

What happens at the end is data. Every terminal transition goes through :func:`finish`, inside
the transaction that ends the render, and :func:`finish` runs the :data:`AT_END` hooks in that
same transaction. A feature that must happen when a render ends (a webhook outbox row, a
retention deadline, a cache entry, a refund) is a function ``(session, services, render,
outcome) -> None`` appended to :data:`AT_END`: it commits with the status change or not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from renderlab import metrics, store
from renderlab.models import TERMINAL_STATUSES, Render, RenderStatus
from renderlab.pipeline import failures
from renderlab.pipeline.cache import remember_output
from renderlab.pipeline.failures import Failure, LostClaim
from renderlab.pipeline.outputs import discard_failed
from renderlab.pipeline.refund import refund_quota
from renderlab.services import Canceller, Services

log = logging.getLogger(__name__)


class RenderFinished(Exception):
    """The render is already complete or failed: there is nothing left to cancel."""


@dataclass(frozen=True)
class Outcome:
    """How a render ends: ``complete`` with its stored video, or ``failed`` with the user's
    sentence and whether its quota slot comes back."""

    status: RenderStatus
    error: str | None = None
    refund: bool = False
    error_code: str | None = None
    output_key: str | None = None
    output_size: int | None = None
    poster_key: str | None = None

    @classmethod
    def completed(cls, output_key: str, output_size: int, poster_key: str | None = None) -> Outcome:
        return cls(
            RenderStatus.COMPLETE,
            output_key=output_key,
            output_size=output_size,
            poster_key=poster_key,
        )

    @classmethod
    def failed(cls, failure: Failure) -> Outcome:
        return cls(
            RenderStatus.FAILED,
            error=failure.message,
            refund=failure.refund,
            error_code=failure.code,
        )


EndHook = Callable[[Session, Services, Render, Outcome], None]


def refund_if_due(session: Session, services: Services, render: Render, outcome: Outcome) -> None:
    """A render that failed through our fault (or was cancelled) gives its slot back."""
    if outcome.status == RenderStatus.FAILED and outcome.refund:
        refund_quota(session, services, render)


AT_END: list[EndHook] = [
    refund_if_due,
    discard_failed,
    remember_output,
]
"""What happens, in the ending transaction, after a render became complete or failed: each hook
gets the locked, already terminal row and the :class:`Outcome`. Append a feature's hook here."""


def finish(session: Session, services: Services, render: Render, outcome: Outcome) -> Render:
    """THE terminal transition of a locked, unfinished ``render``, then the :data:`AT_END`
    hooks, all in the caller's transaction (the caller has re-checked the render is theirs)."""
    changes: dict[str, object] = {"status": outcome.status, "lease_expires_at": None}
    if outcome.status == RenderStatus.COMPLETE:
        changes.update(progress=100, output_key=outcome.output_key)
        changes.update(output_size=outcome.output_size, poster_key=outcome.poster_key)
    else:
        changes.update(error=outcome.error, error_code=outcome.error_code)
    ended = store.update(session, render.id, now=services.clock(), **changes)
    for hook in AT_END:
        hook(session, services, ended, outcome)
    return ended


def locked(
    session: Session,
    render_id: str,
    *,
    status: RenderStatus | None = None,
    owner: str | None = None,
) -> Render | None:
    """The lock-and-recheck of every moment: the render row, locked until the transaction
    ends, if it still is in ``status`` and held by ``owner`` (each when given); else None."""
    render = store.lock(session, render_id)
    if render is None:
        return None
    if status is not None and render.status != status:
        return None
    if owner is not None and render.lease_owner != owner:
        return None
    return render


def owned(session: Session, render_id: str, owner: str) -> Render:
    """The render, locked, if ``owner`` still holds it; else :class:`LostClaim`.

    Every write a worker makes goes through this check in the same transaction, so a worker
    whose render was cancelled, timed out or handed on can never overwrite what decided that.
    """
    render = store.lock(session, render_id)
    if render is None:
        # Deleted while it ran: to its worker that is a failed render, whose files (a stored
        # video, segments) it removes on the way out, as the delete may already have run.
        raise LostClaim(render_id, RenderStatus.FAILED)
    if render.status != RenderStatus.RENDERING or render.lease_owner != owner:
        raise LostClaim(render_id, render.status)
    return render


def claim(
    services: Services,
    render_id: str,
    *,
    owner: str,
    job_id: str,
    lease_ms: int | None = None,
) -> Render | None:
    """``pending -> rendering`` for ``owner``: the render as claimed, or None if it is not
    pending (already claimed, finished, cancelled, or unknown).

    Sets ``attempts += 1``, the lease (``lease_ms``, default ``limits.lease_ms``),
    ``started_at`` (the render timeout counts from here, per attempt), the job id and bucket.
    """
    bucket = services.storage.bucket_name
    now = services.clock()
    lease = lease_ms if lease_ms is not None else services.limits.lease_ms
    with services.db.transaction() as session:
        render = locked(session, render_id, status=RenderStatus.PENDING)
        if render is None:
            return None
        claimed = store.update(
            session,
            render_id,
            now=now,
            status=RenderStatus.RENDERING,
            attempts=render.attempts + 1,
            lease_owner=owner,
            lease_expires_at=now + lease,
            heartbeat_at=now,
            started_at=now,
            job_id=job_id,
            bucket_name=bucket,
        )
    if claimed.attempts == 1:  # a render starts once, however often it is handed out again
        metrics.render_started(claimed.codec, max(0, now - claimed.created_at) / 1000)
    return claimed


def progress(
    services: Services, render_id: str, owner: str, *, percent: int | None = None
) -> Render:
    """Renew ``owner``'s lease and, if given and higher than stored, raise the progress.

    Raises :class:`LostClaim` if the render is no longer ``owner``'s. Progress is only ever
    written upwards: a retried attempt starts from zero frames but the row keeps the earlier
    attempt's value until the new one passes it, so users never see the bar go back.
    """
    now = services.clock()
    with services.db.transaction() as session:
        render = owned(session, render_id, owner)
        changes: dict[str, int] = {
            "lease_expires_at": now + services.limits.lease_ms,
            "heartbeat_at": now,
        }
        if percent is not None and percent > render.progress:
            changes["progress"] = percent
        return store.update(session, render_id, now=now, **changes)


def complete(
    services: Services,
    render_id: str,
    owner: str,
    *,
    output_key: str,
    output_size: int,
    poster_key: str | None = None,
) -> Render:
    """``owner``'s render is complete with its stored video (and poster); :class:`LostClaim`
    if it is no longer theirs (then nothing is written)."""
    outcome = Outcome.completed(output_key, output_size, poster_key)
    with services.db.transaction() as session:
        render = owned(session, render_id, owner)
        return finish(session, services, render, outcome)


def fail(
    services: Services,
    render_id: str,
    failure: Failure,
    *,
    owner: str | None = None,
) -> Render | None:
    """Fail the render unless it already finished; with ``owner``, only while they hold it.

    Returns the failed render, or None when it was not this call that failed it.
    """
    with services.db.transaction() as session:
        render = locked(session, render_id)
        if render is None or render.status in TERMINAL_STATUSES:
            return None
        if owner is not None and (
            render.status != RenderStatus.RENDERING or render.lease_owner != owner
        ):
            return None
        failed = finish(session, services, render, Outcome.failed(failure))
    log.info("render %s failed: %s (%s)", render_id, failure.message, failure.code)
    return failed


def cancel(services: Services, user_id: str, render_id: str) -> Render:
    """The owner cancels a pending or rendering render: it ends ``failed`` with "Render
    cancelled." and its quota slot is given back, in one transaction.

    The worker, if any, notices at its next progress write and stops; where the dispatcher can
    stop it at once (the embedded pool kills the render process) it is told to after commit.
    """
    with services.db.transaction() as session:
        render = locked(session, render_id)
        if render is None or render.user_id != user_id:
            raise store.NotFound("render not found")
        if render.status in TERMINAL_STATUSES:
            ended = "completed" if render.status == RenderStatus.COMPLETE else "failed"
            raise RenderFinished(
                f"This render has already {ended}; only pending or rendering renders can be "
                "cancelled."
            )
        cancelled = finish(session, services, render, Outcome.failed(failures.cancelled()))
    log.info("render %s cancelled by its owner", render_id)
    if isinstance(services.dispatcher, Canceller):
        services.dispatcher.cancel(render_id)
    return cancelled


def release(
    services: Services,
    render_id: str,
    *,
    owner: str | None = None,
    expired_before: int | None = None,
    count_attempt: bool = True,
) -> Render | None:
    """Take a ``rendering`` render from a worker that is gone (or that gives it back).

    Only acts while the render is still held by ``owner`` (when given) and its lease ended
    before ``expired_before`` (when given). Back to ``pending`` if attempts remain (the caller
    dispatches it), else failed with a refund. ``count_attempt=False`` (a clean shutdown, a
    plan that could not be written) gives the attempt back. Returns the changed render.
    """
    with services.db.transaction() as session:
        render = locked(session, render_id, status=RenderStatus.RENDERING, owner=owner)
        if render is None:
            return None
        if expired_before is not None and (render.lease_expires_at or 0) >= expired_before:
            return None
        attempts = render.attempts if count_attempt else max(0, render.attempts - 1)
        if attempts < services.limits.max_render_attempts:
            log.warning("render %s lost its worker %s; retrying", render_id, render.lease_owner)
            return store.update(
                session,
                render_id,
                now=services.clock(),
                status=RenderStatus.PENDING,
                attempts=attempts,
                lease_owner=None,
                lease_expires_at=None,
            )
        log.error("render %s lost its worker %s again; failing", render_id, render.lease_owner)
        return finish(session, services, render, Outcome.failed(failures.worker_lost()))
