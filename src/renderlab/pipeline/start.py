"""Starting a render: ownership, caps, quota and the new row in one transaction.

Order matters: a missing generation is a 404 and a setting outside the caps a 422, both before
any quota is touched; only then is a slot consumed, in the same transaction that inserts the
render, so a failed insert gives the slot back by rolling back. The job is handed to the
workers only after the commit, so no worker can see a render that might still roll back.

It is written as Core statements on one connection (``Database.write``): it runs on every
``POST /v1/renders``, and the ORM's session and unit of work cost more than its seven
statements. On SQLite they run without SQLAlchemy's execution machinery
(:class:`~renderlab.rowreader.RawTransaction`), but for an output-cache hit, which completes
through the lifecycle's ORM session and so starts again on a SQLAlchemy connection.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, or_, select
from sqlalchemy.exc import IntegrityError

from renderlab import caps, logs, store
from renderlab.compositions import TextAnimationProps
from renderlab.db import Executor
from renderlab.ids import new_id
from renderlab.limits import Limits
from renderlab.models import Generation, IdempotencyKey, Render, RenderStatus, User
from renderlab.pipeline import cache
from renderlab.quota import RENDER_QUOTA
from renderlab.render.formats import get_format, render_warnings
from renderlab.services import Services
from renderlab.store import RenderSnapshot
from renderlab.webhooks import check_webhook_url

_KEY = (IdempotencyKey.user_id == bindparam("user_id")) & (IdempotencyKey.key == bindparam("key"))
_FIND_KEY = select(
    IdempotencyKey.request_hash, IdempotencyKey.render_id, IdempotencyKey.created_at
).where(_KEY)
_DROP_KEY = delete(IdempotencyKey).where(_KEY)
_ADD_KEY = insert(IdempotencyKey)
_ADD_GENERATION = insert(Generation)


class QuotaExceeded(Exception):
    def __init__(self, message: str, retry_after_ms: int, limit: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_ms = retry_after_ms
        self.limit = limit


class TooManyConcurrentRenders(Exception):
    """The user already has ``limits.max_concurrent_renders`` renders pending or rendering."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.message = (
            f"You already have {limit} render{'' if limit == 1 else 's'} pending or rendering, "
            "the most at once. Wait for one to finish, or cancel one, then start again."
        )
        super().__init__(self.message)


class IdempotencyConflict(ValueError):
    """The same Idempotency-Key was used with another request body."""


class _NeedsSession(Exception):
    """An output-cache hit on a connection an ORM session cannot join: roll back, and start
    again on a SQLAlchemy connection."""


@dataclass(frozen=True)
class RenderRequest:
    """What ``POST /v1/renders`` asks for, validated at the edge: a stored generation
    (``generation_id``) or new props to store in the same transaction (``animation_props``,
    with an optional ``prompt``), exactly one of the two."""

    generation_id: str | None = None
    width: int | None = None
    height: int | None = None
    codec: str = "h264"
    poster_frame: int | None = None
    webhook_url: str | None = None
    metadata: dict[str, Any] | None = None
    animation_props: dict[str, Any] | None = None
    prompt: str | None = None

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
    wait: bool = True,
) -> tuple[RenderSnapshot, bool]:
    """Create a pending render and dispatch it. Returns ``(render, created)``; ``created`` is
    False when an Idempotency-Key replay returned an earlier render.

    ``wait=False`` (the API on its event loop): :class:`~renderlab.db.WriterBusy`, having done
    nothing, when another writer holds the database; and no webhook URL, whose check resolves
    a host name."""
    if not wait and request.webhook_url is not None:
        raise ValueError("a start that must not wait cannot check a webhook URL")
    check_webhook(services, request.webhook_url)
    sqlalchemy = False
    for _ in range(4):
        try:
            with services.db.write(sqlalchemy=sqlalchemy, wait=wait) as connection:
                render, created = _start_in(connection, services, user_id, request, idempotency_key)
        except _NeedsSession:
            sqlalchemy = True
            continue
        except IntegrityError:
            if idempotency_key is None:
                raise
            continue  # a concurrent request with the same key won: read its render
        if created and not render.is_terminal and services.dispatcher is not None:
            services.dispatcher.dispatch(render.id)
        return render, created
    raise RuntimeError("could not settle a concurrent Idempotency-Key")


def requested_size(
    props: TextAnimationProps, width: int | None, height: int | None, limits: Limits
) -> tuple[int, int]:
    """The size asked for (:func:`renderlab.caps.requested_size`, of the composition's own
    size): the one place renders and stills default their size."""
    size = caps.requested_size(limits, props.width, props.height, width, height)
    return size.width, size.height


def check_output(props: TextAnimationProps, request: RenderRequest) -> list[str]:
    """Refuse a codec outside the descriptor table or a poster frame outside the animation
    (each a :class:`~renderlab.caps.CapError` naming its field); return the render's
    ``warnings``: what the codec loses of these props, said before any quota is used."""
    get_format(request.codec)
    frame = request.poster_frame
    if frame is not None and (
        isinstance(frame, bool)
        or not isinstance(frame, int)
        or not 0 <= frame < props.duration_in_frames
    ):
        raise caps.CapError(
            "poster_frame",
            f"poster_frame must be an integer from 0 to {props.duration_in_frames - 1}.",
        )
    return render_warnings(props, request.codec)


def _insert(
    connection: Executor,
    services: Services,
    user_id: str,
    generation_id: str,
    request: RenderRequest,
    props: TextAnimationProps,
    warnings: list[str],
) -> RenderSnapshot:
    """The new render row: pending, or complete at once from an earlier identical render's
    files (the output cache, :mod:`.cache`), in the start's transaction either way."""
    width, height = requested_size(props, request.width, request.height, services.limits)
    key = cache.cache_key(props, width, height, request.codec, request.poster_frame)
    hit = cache.find_output(connection, user_id, key)
    render = store.insert(
        connection,
        user_id=user_id,
        generation_id=generation_id,
        width=width,
        height=height,
        fps=props.fps,
        duration_in_frames=props.duration_in_frames,
        codec=request.codec,
        now=services.clock(),
        poster_frame=request.poster_frame,
        warnings=warnings,
        webhook_url=request.webhook_url,
        render_metadata=request.metadata,
        cache_key=None if hit is None else key,
        status=RenderStatus.PENDING if hit is None else RenderStatus.RENDERING,
        request_id=logs.current("request_id"),
    )
    if hit is None:
        return render
    if not isinstance(connection, Connection):
        raise _NeedsSession
    return cache.complete_from(connection, services, render.id, hit)


def _start_in(
    connection: Executor,
    services: Services,
    user_id: str,
    request: RenderRequest,
    idempotency_key: str | None,
) -> tuple[RenderSnapshot, bool]:
    limits = services.limits
    if idempotency_key is not None:
        earlier = _replay(connection, services, user_id, idempotency_key, request.fingerprint())
        if earlier is not None:
            return earlier, False
    props = _props_of(connection, user_id, request)
    width, height = requested_size(props, request.width, request.height, limits)
    warnings = check_output(props, request)
    caps.check_render(props, width, height, limits, request.codec)
    check_concurrency(connection, user_id, limits)
    result = services.quota.limit(connection, RENDER_QUOTA, user_id)
    if not result.ok:
        retry_after = math.ceil(result.retry_after or 0)
        raise QuotaExceeded(quota_message(services), retry_after, limits.renders_per_hour)
    generation_id = request.generation_id or _add_generation(
        connection, services, user_id, props, request.prompt
    )
    render = _insert(connection, services, user_id, generation_id, request, props, warnings)
    if idempotency_key is not None:
        connection.execute(
            _ADD_KEY,
            {
                "user_id": user_id,
                "key": idempotency_key,
                "request_hash": request.fingerprint(),
                "render_id": render.id,
                "created_at": services.clock(),
            },
        )
    return render, True


_RUNNING_STATUSES = (RenderStatus.PENDING, RenderStatus.RENDERING)
_LOCK_USER = select(User.id).where(User.id == bindparam("user_id")).with_for_update()
_RUNNING = select(func.count()).select_from(
    select(Render.id)
    .where(
        Render.user_id == bindparam("user_id"),
        # OR terms, not IN: SQLite plans them the same, and the SQL does not depend on the
        # values (an expanding IN does, and RowReader compiles a statement once).
        or_(*(Render.status == status.value for status in _RUNNING_STATUSES)),
    )
    # Counted up to the cap only: the check needs no more, and a user (or a bench) with
    # thousands of pending renders made every start walk all of them in the index.
    .limit(bindparam("cap"))
    .subquery()
)


def check_concurrency(connection: Executor, user_id: str, limits: Limits) -> None:
    """:class:`TooManyConcurrentRenders` if the user is at ``limits.max_concurrent_renders``.

    Decided in the start transaction, before the quota, so a refusal costs no slot. The count
    cannot race another start of the same user: on PostgreSQL the user's row is locked first
    (every start of one user queues here, and always before the limiter's row: one lock order,
    no deadlock); SQLite's write transaction (``BEGIN IMMEDIATE``) is exclusive already.
    """
    if connection.dialect.name != "sqlite":  # SQLite's writer holds the whole database
        connection.execute(_LOCK_USER, {"user_id": user_id}).first()
    cap = limits.max_concurrent_renders
    running = connection.execute(_RUNNING, {"user_id": user_id, "cap": cap}).scalar_one()
    if running >= cap:
        raise TooManyConcurrentRenders(cap)


def check_webhook(services: Services, url: str | None) -> None:
    """:class:`~renderlab.webhooks.InvalidWebhookURL` unless ``url`` may receive webhooks.
    Run before the transaction: it resolves the host, and no lock should wait on DNS."""
    if url is not None:
        check_webhook_url(url, services.settings.webhook_allow_private)


def _props_of(connection: Executor, user_id: str, request: RenderRequest) -> TextAnimationProps:
    """The props to render: the stored generation's, or the request's own (one request)."""
    if request.animation_props is not None:
        if request.generation_id is not None:
            raise ValueError("send generation_id or animation_props, not both")
        return TextAnimationProps(**request.animation_props)
    if request.generation_id is None:
        raise ValueError("send generation_id or animation_props")
    return store.generation_props(connection, user_id, request.generation_id)


def _add_generation(
    connection: Executor,
    services: Services,
    user_id: str,
    props: TextAnimationProps,
    prompt: str | None,
) -> str:
    """Store the one-request render's props as a generation, in the render's transaction:
    a request refused later (quota, caps, a failed insert) rolls it back with the rest."""
    generation_id = new_id()
    connection.execute(
        _ADD_GENERATION,
        {
            "id": generation_id,
            "user_id": user_id,
            "prompt": prompt,
            "animation_props": props.model_dump(mode="json"),
            "status": RenderStatus.COMPLETE.value,
            "error_message": None,
            "created_at": services.clock(),
        },
    )
    return generation_id


def _replay(
    connection: Executor, services: Services, user_id: str, key: str, fingerprint: str
) -> RenderSnapshot | None:
    where = {"user_id": user_id, "key": key}
    row = connection.execute(_FIND_KEY, where).first()
    if row is None:
        return None
    if services.clock() - row.created_at > services.limits.idempotency_ttl_ms:
        connection.execute(_DROP_KEY, where)
        return None
    if row.request_hash != fingerprint:
        raise IdempotencyConflict("Idempotency-Key was already used with a different request.")
    render = store.find(connection, row.render_id)
    if render is None:  # the render was deleted: the key no longer stands for anything
        connection.execute(_DROP_KEY, where)
    return render
