"""Starting a render: ownership, caps, quota and the new row in one transaction.

Order matters: a missing generation is a 404 and a setting outside the caps a 422, both before
any quota is touched; only then is a slot consumed, in the same transaction that inserts the
render, so a failed insert gives the slot back by rolling back. The job is handed to the
workers only after the commit, so no worker can see a render that might still roll back.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from renderlab import caps, store
from renderlab.compositions import TextAnimationProps
from renderlab.models import IdempotencyKey, Render
from renderlab.quota import RENDER_QUOTA
from renderlab.services import Services


class QuotaExceeded(Exception):
    def __init__(self, message: str, retry_after_ms: int, limit: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_ms = retry_after_ms
        self.limit = limit


class IdempotencyConflict(ValueError):
    """The same Idempotency-Key was used with another request body."""


@dataclass(frozen=True)
class RenderRequest:
    generation_id: str
    width: int | None = None
    height: int | None = None
    codec: str = "h264"

    def fingerprint(self) -> str:
        body = json.dumps(self.__dict__, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()


def quota_message(services: Services) -> str:
    return (
        f"Render quota exceeded. You can render up to {services.limits.renders_per_hour} videos "
        f"per {_window_words(services.limits.rate_window_ms)}. Please try again later."
    )


def _window_words(window_ms: int) -> str:
    if window_ms == 3_600_000:
        return "hour"
    if window_ms % 3_600_000 == 0:
        return f"{window_ms // 3_600_000} hours"
    if window_ms % 60_000 == 0:
        return f"{window_ms // 60_000} minutes" if window_ms != 60_000 else "minute"
    return f"{window_ms / 1000:g} seconds"


def start_render(
    services: Services,
    user_id: str,
    request: RenderRequest,
    *,
    idempotency_key: str | None = None,
) -> tuple[Render, bool]:
    """Create a pending render and dispatch it. Returns ``(render, created)``; ``created`` is
    False when an Idempotency-Key replay returned an earlier render."""
    for _ in range(3):
        try:
            with services.db.transaction() as session:
                render, created = _start_in(session, services, user_id, request, idempotency_key)
        except IntegrityError:
            if idempotency_key is None:
                raise
            continue  # a concurrent request with the same key won: read its render
        if created and services.dispatcher is not None:
            services.dispatcher.dispatch(render.id)
        return render, created
    raise RuntimeError("could not settle a concurrent Idempotency-Key")


def _start_in(
    session: Session,
    services: Services,
    user_id: str,
    request: RenderRequest,
    idempotency_key: str | None,
) -> tuple[Render, bool]:
    limits = services.limits
    if idempotency_key is not None:
        earlier = _replay(session, services, user_id, idempotency_key, request.fingerprint())
        if earlier is not None:
            return earlier, False
    generation = store.get_generation(session, user_id, request.generation_id)
    props = TextAnimationProps(**generation.animation_props)
    size = caps.default_size(limits)
    width = request.width if request.width is not None else size.width
    height = request.height if request.height is not None else size.height
    caps.check_codec(request.codec)
    caps.check_duration(props.duration_in_frames, props.fps, limits)
    caps.check_size(width, height, limits)
    result = services.quota.limit(session, RENDER_QUOTA, user_id)
    if not result.ok:
        retry_after = math.ceil(result.retry_after or 0)
        raise QuotaExceeded(quota_message(services), retry_after, limits.renders_per_hour)
    render = store.create_render(
        session,
        user_id=user_id,
        generation_id=generation.id,
        width=width,
        height=height,
        fps=props.fps,
        duration_in_frames=props.duration_in_frames,
        codec=request.codec,
        created_at=services.clock(),
    )
    if idempotency_key is not None:
        session.add(
            IdempotencyKey(
                user_id=user_id,
                key=idempotency_key,
                request_hash=request.fingerprint(),
                render_id=render.id,
                created_at=services.clock(),
            )
        )
        session.flush()
    return render, True


def _replay(
    session: Session, services: Services, user_id: str, key: str, fingerprint: str
) -> Render | None:
    row: Any = session.get(IdempotencyKey, (user_id, key))
    if row is None:
        return None
    if services.clock() - row.created_at > services.limits.idempotency_ttl_ms:
        session.delete(row)
        session.flush()
        return None
    if row.request_hash != fingerprint:
        raise IdempotencyConflict("Idempotency-Key was already used with a different request.")
    return store.get_render_internal(session, row.render_id)
