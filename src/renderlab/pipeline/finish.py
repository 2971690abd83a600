"""The two ends of a render: ``complete`` (stored video, signed URL) and ``failed``.

Both are compare-and-set on the locked row, so whoever finishes a render first decides: a
worker completing a render that was cancelled a moment earlier gets :class:`LostClaim`, and a
second ``fail`` of an already failed render changes nothing (and refunds nothing).
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from renderlab import store
from renderlab.models import TERMINAL_STATUSES, Render
from renderlab.pipeline.claim import owned_render
from renderlab.pipeline.refund import refund_quota
from renderlab.services import Services
from renderlab.storage import SignedURL

log = logging.getLogger(__name__)


def download_filename(render: Render) -> str:
    """What a browser saves the video as."""
    return f"render-{render.id}.mp4"


def sign_output(services: Services, render: Render, key: str) -> SignedURL:
    """A download URL for ``key`` valid for ``limits.download_url_ttl_s`` from now."""
    return services.storage.signed_url(
        key,
        expires_in_s=services.limits.download_url_ttl_s,
        filename=download_filename(render),
        now=services.clock() / 1000,
    )


def complete_render(
    services: Services, render: Render, owner: str, *, output_key: str, output_size: int
) -> Render:
    """Mark ``owner``'s render complete with its stored video; :class:`LostClaim` if it is no
    longer theirs (then nothing is written)."""
    signed = sign_output(services, render, output_key)
    with services.db.transaction() as session:
        owned_render(session, render.id, owner)
        return store.update_render(
            session,
            render.id,
            status="complete",
            progress=100,
            output_key=output_key,
            output_url=signed.url,
            output_size=output_size,
            completed_at=services.clock(),
            lease_expires_at=None,
        )


def fail_in(
    session: Session, services: Services, render: Render, message: str, *, refund: bool
) -> Render:
    """Fail a locked, unfinished ``render`` with ``message``, refunding its slot if asked."""
    failed = store.update_render(
        session,
        render.id,
        status="failed",
        error=message,
        completed_at=services.clock(),
        lease_expires_at=None,
    )
    if refund:
        refund_quota(session, services, failed)
    return failed


def fail_render(
    services: Services,
    render_id: str,
    message: str,
    *,
    refund: bool,
    owner: str | None = None,
) -> Render | None:
    """Fail the render unless it already finished; with ``owner``, only while they hold it.

    Returns the failed render, or None when it was not this call that failed it.
    """
    with services.db.transaction() as session:
        render = store.find_render_internal(session, render_id, lock=True)
        if render is None:
            return None
        if render.status in TERMINAL_STATUSES:
            return None
        if owner is not None and (render.status != "rendering" or render.lease_owner != owner):
            return None
        failed = fail_in(session, services, render, message, refund=refund)
    log.info("render %s failed: %s (refund=%s)", render_id, message, refund)
    return failed
