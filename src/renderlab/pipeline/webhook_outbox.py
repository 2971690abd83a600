"""The render's webhook, from its end to its delivery.

:func:`enqueue_at_end` is an ``AT_END`` hook (registered at import, see the package
``__init__``): when a render with a ``webhook_url`` ends, ``render.completed`` or
``render.failed`` goes into the outbox in the transaction that ends it, so the event commits
with the terminal status or not at all. The stored event holds the render object as it ended
but without signed URLs (nothing that goes stale is stored); :func:`refresher` rebuilds the
object at every attempt, so a late retry still carries working ``output_url``/``poster_url``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from renderlab import store
from renderlab.models import Render, RenderStatus
from renderlab.pipeline.render_object import render_fields, token_identifier_of
from renderlab.services import Services
from renderlab.webhooks import make_event
from renderlab.webhooks.outbox import Leased, Refresh, enqueue

if TYPE_CHECKING:
    from renderlab.pipeline.lifecycle import Outcome


def enqueue_at_end(session: Session, services: Services, render: Render, outcome: Outcome) -> None:
    """The ``AT_END`` hook: the event of a render that has a webhook URL, in its outbox."""
    if not render.webhook_url:
        return
    kind = "render.completed" if outcome.status == RenderStatus.COMPLETE else "render.failed"
    now = services.clock()
    data = render_fields(render, token_identifier_of(session, render.user_id))
    event = make_event(kind, data, now)
    enqueue(
        session, event, render_id=render.id, user_id=render.user_id, url=render.webhook_url, now=now
    )


def refresher(services: Services) -> Refresh:
    """The outbox's ``refresh``: the render object as of this attempt, URLs signed now; None
    (send the stored object) once the render is gone."""

    def refresh(session: Session, leased: Leased) -> dict[str, Any] | None:
        render = store.find(session, leased.render_id)
        if render is None:
            return None
        return render_fields(
            render, token_identifier_of(session, render.user_id), _urls(services, render)
        )

    return refresh


def _urls(services: Services, render: store.RenderSnapshot) -> Any:
    from renderlab.pipeline import actions

    if services.storage_factory is None:
        return None
    return actions.signed_urls(services, render)


def register() -> None:
    """Add :func:`enqueue_at_end` to the lifecycle's hooks (once)."""
    from renderlab.pipeline.lifecycle import AT_END

    if enqueue_at_end not in AT_END:
        AT_END.append(enqueue_at_end)
