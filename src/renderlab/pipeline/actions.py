"""What an owner can do to a render after starting it: cancel it, and get a fresh download URL.

Both are owner-only: another user's render is :class:`~renderlab.store.NotFound`, exactly as
an id that does not exist.
"""

from __future__ import annotations

import logging

from renderlab import store
from renderlab.models import TERMINAL_STATUSES, Render
from renderlab.pipeline.failures import CANCELLED
from renderlab.pipeline.finish import fail_in, sign_output
from renderlab.services import Canceller, Services
from renderlab.storage import SignedURL

log = logging.getLogger(__name__)


class RenderFinished(Exception):
    """The render is already complete or failed: there is nothing left to cancel."""


class RenderNotComplete(Exception):
    """The render has no video yet (or never will): there is nothing to download."""


def cancel_render(services: Services, user_id: str, render_id: str) -> Render:
    """Cancel the owner's pending or rendering render: it ends ``failed`` with
    "Render cancelled." and its quota slot is given back, in one transaction.

    The worker, if any, notices at its next progress write and stops; where the dispatcher can
    stop it at once (the embedded pool kills the render process) it is told to after commit.
    """
    with services.db.transaction() as session:
        render = store.get_render_internal(session, render_id, lock=True)
        if render.user_id != user_id:
            raise store.NotFound("render not found")
        if render.status in TERMINAL_STATUSES:
            ended = "completed" if render.status == "complete" else "failed"
            raise RenderFinished(
                f"This render has already {ended}; only pending or rendering renders can be "
                "cancelled."
            )
        cancelled = fail_in(session, services, render, CANCELLED, refund=True)
    log.info("render %s cancelled by its owner", render_id)
    if isinstance(services.dispatcher, Canceller):
        services.dispatcher.cancel(render_id)
    return cancelled


def download_url(services: Services, user_id: str, render_id: str) -> SignedURL:
    """A new signed URL for the owner's complete render, made from its ``output_key``.

    The seed's refreshDownloadUrl handed back the stored URL, which may have expired; this signs
    again, valid for ``limits.download_url_ttl_s`` from now. Nothing is written.
    """
    with services.db.session() as session:  # read what is needed before the session ends
        render = store.get_render(session, user_id, render_id)
        status, key = render.status, render.output_key
        session.expunge(render)
    if status != "complete" or not key:
        raise RenderNotComplete(
            f"This render is {status}; a download URL exists once it is complete."
        )
    return sign_output(services, render, key)
