"""Renders in the database: one read model, plain names.

* :func:`find` / :func:`get`: one render as a :class:`RenderSnapshot` (the read model every
  reader gets: API, change feed, supervisor), with one Core statement; ``user_id`` scopes the
  read to its owner, so another user's render is not found, exactly as an id that does not
  exist.
* :func:`lock`: the ORM row, locked until the transaction ends, for the pipeline to change
  with :func:`update`, which enforces the state machine, so no caller (a late worker, a
  redelivered Celery task) can move a finished render back or make progress go down.

Times are given by the caller (``now``, from ``services.clock``): the store never reads a
clock of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy import insert as insert_statement
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.attributes import flag_modified

from renderlab.db import Database, Executor
from renderlab.ids import is_id, new_id
from renderlab.models import TERMINAL_STATUSES, Render, RenderStatus
from renderlab.store.errors import InvalidUpdate, NotFound
from renderlab.store.paging import Page, page_newest_first

# pending -> rendering -> complete | failed; rendering -> pending when a lost worker's render is
# handed out again. Terminal states only accept a re-signed output URL.
TRANSITIONS: dict[str, frozenset[str]] = {
    RenderStatus.PENDING: frozenset(
        {RenderStatus.PENDING, RenderStatus.RENDERING, RenderStatus.FAILED}
    ),
    RenderStatus.RENDERING: frozenset(
        {RenderStatus.RENDERING, RenderStatus.PENDING, RenderStatus.COMPLETE, RenderStatus.FAILED}
    ),
    RenderStatus.COMPLETE: frozenset({RenderStatus.COMPLETE}),
    RenderStatus.FAILED: frozenset({RenderStatus.FAILED}),
}
UPDATABLE = frozenset(
    {
        "status",
        "progress",
        "output_url",
        "output_size",
        "error",
        "completed_at",
        "job_id",
        "bucket_name",
        "output_key",
        "attempts",
        "started_at",
        "lease_owner",
        "lease_expires_at",
        "heartbeat_at",
        "quota_refunded",
        "poster_key",
        "error_code",
        "expires_at",
        "output_expired",
    }
)
TERMINAL_UPDATABLE = frozenset({"output_url", "quota_refunded", "expires_at", "output_expired"})
"""What may still change once a render ended: the refund flag, and retention (its deadline, and
whether the output is gone)."""


@dataclass(frozen=True, slots=True)
class RenderSnapshot:
    """The user-visible columns of one render row at one moment (plus ``updated_at``)."""

    id: str
    user_id: str
    generation_id: str
    job_id: str | None
    bucket_name: str | None
    status: str
    progress: int
    output_url: str | None
    output_size: int | None
    error: str | None
    created_at: int
    completed_at: int | None
    width: int
    height: int
    fps: int
    codec: str
    duration_in_frames: int
    poster_frame: int | None
    warnings: list[str]
    render_metadata: dict[str, Any] | None
    webhook_url: str | None
    error_code: str | None
    expires_at: int | None
    output_expired: bool
    updated_at: int
    # Pipeline bookkeeping, not shown to users.
    output_key: str | None
    attempts: int
    started_at: int | None
    lease_owner: str | None
    lease_expires_at: int | None
    heartbeat_at: int | None
    quota_refunded: bool
    poster_key: str | None
    cache_key: str | None
    request_id: str | None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def visible(self) -> tuple[Any, ...]:
        """What a client can see: two snapshots that differ only in ``updated_at`` (a worker's
        heartbeat, a lease renewal) are the same event."""
        return tuple(getattr(self, name) for name in _VISIBLE)

    @classmethod
    def of(cls, render: Any) -> RenderSnapshot:
        """From an ORM ``Render`` or any object/row with the same attribute names."""
        return cls(**{name: getattr(render, name) for name in _FIELDS})


_FIELDS = tuple(f.name for f in fields(RenderSnapshot))
_HIDDEN = frozenset(
    {"updated_at", "output_key", "attempts", "started_at", "lease_owner", "lease_expires_at"}
    | {"heartbeat_at", "quota_refunded", "poster_key", "cache_key", "request_id"}
)
_VISIBLE = tuple(name for name in _FIELDS if name not in _HIDDEN)
_COLUMNS = {name: Render.__mapper__.columns[name] for name in _FIELDS}
RENDER_COLUMNS = list(_COLUMNS.values())
_ONE_RENDER = select(*RENDER_COLUMNS).where(Render.id == bindparam("render_id"))
_OWNED_RENDER = _ONE_RENDER.where(Render.user_id == bindparam("user_id"))
_INSERT_RENDER = insert_statement(Render)


_AT_START: dict[str, Any] = {
    "job_id": None,
    "bucket_name": None,
    "progress": 0,
    "output_url": None,
    "output_size": None,
    "error": None,
    "completed_at": None,
    "error_code": None,
    "expires_at": None,
    "output_expired": False,
    "output_key": None,
    "attempts": 0,
    "started_at": None,
    "lease_owner": None,
    "lease_expires_at": None,
    "heartbeat_at": None,
    "quota_refunded": False,
    "poster_key": None,
}
"""The columns of a new render that no caller chooses (see :func:`insert`)."""


def insert(
    connection: Executor,
    *,
    user_id: str,
    generation_id: str,
    width: int,
    height: int,
    fps: int,
    duration_in_frames: int,
    codec: str = "h264",
    now: int,
    status: str = RenderStatus.PENDING,
    poster_frame: int | None = None,
    warnings: list[str] | None = None,
    render_metadata: dict[str, Any] | None = None,
    webhook_url: str | None = None,
    cache_key: str | None = None,
    request_id: str | None = None,
) -> RenderSnapshot:
    """Insert a new render with one Core statement and return it as a snapshot.

    This is the write behind every ``POST /v1/renders``: the ORM's unit of work around one
    insert cost more than the insert, and the caller only needs the row's values back, which
    are all known before the statement runs. ``now`` is the caller's clock
    (``services.clock()``): the store never reads the wall clock itself.
    """
    if status not in (RenderStatus.PENDING, RenderStatus.RENDERING):
        raise InvalidUpdate(f"a render starts pending or rendering, not {status}")
    row: dict[str, Any] = {
        **_AT_START,
        "id": new_id(),
        "user_id": user_id,
        "generation_id": generation_id,
        "status": str(status),
        "created_at": now,
        "updated_at": now,
        "width": width,
        "height": height,
        "fps": fps,
        "codec": codec,
        "duration_in_frames": duration_in_frames,
        "poster_frame": poster_frame,
        "warnings": list(warnings or ()),
        "render_metadata": render_metadata,
        "webhook_url": webhook_url,
        "cache_key": cache_key,
        "request_id": request_id,
    }
    connection.execute(_INSERT_RENDER, {_COLUMNS[name].key: value for name, value in row.items()})
    return RenderSnapshot(**row)


Reader = Executor | Session | Database


def find(reader: Reader, render_id: str, *, user_id: str | None = None) -> RenderSnapshot | None:
    """One render by id (only the user's, when ``user_id`` is given), or None; one Core
    statement, inside a session or on a connection, or given the :class:`Database`, on its
    fastest read path (``Database.first``: the API's render read)."""
    if not is_id(render_id):
        return None
    if user_id is None:
        statement, params = _ONE_RENDER, {"render_id": render_id}
    else:
        statement, params = _OWNED_RENDER, {"render_id": render_id, "user_id": user_id}
    if isinstance(reader, Database):
        row = reader.first(statement, params)
    else:
        connection = reader.connection() if isinstance(reader, Session) else reader
        row = connection.execute(statement, params).first()
    return None if row is None else RenderSnapshot(*row)


def get(reader: Reader, render_id: str, *, user_id: str | None = None) -> RenderSnapshot:
    """:func:`find`, or :class:`NotFound`."""
    render = find(reader, render_id, user_id=user_id)
    if render is None:
        raise NotFound("render not found")
    return render


def lock(session: Session, render_id: str) -> Render | None:
    """The render row, locked until the transaction ends (for :func:`update`), or None."""
    if not is_id(render_id):
        return None
    statement = (
        select(Render)
        .where(Render.id == render_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.execute(statement).scalar_one_or_none()


def update(session: Session, render_id: str, *, now: int, **changes: Any) -> Render:
    """Apply ``changes`` to the render if its state machine allows them, else InvalidUpdate;
    NotFound for a render that does not exist. ``now`` (the caller's ``services.clock()``)
    stamps ``updated_at`` and, on a terminal transition, ``completed_at``.
    """
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise InvalidUpdate(f"not updatable: {', '.join(sorted(unknown))}")
    render = lock(session, render_id)
    if render is None:
        raise NotFound("render not found")
    _check(render, changes)
    if changes.get("status") == RenderStatus.COMPLETE:
        changes.setdefault("progress", 100)
        changes.setdefault("completed_at", now)
    elif changes.get("status") == RenderStatus.FAILED and render.status != RenderStatus.FAILED:
        changes.setdefault("completed_at", now)
    if "status" in changes:
        changes["status"] = str(RenderStatus(changes["status"]))
    for field, value in changes.items():
        setattr(render, field, value)
    render.updated_at = now
    flag_modified(render, "updated_at")  # written even when unchanged: no wall-clock onupdate
    session.flush()
    return render


def _check(render: Render, changes: dict[str, Any]) -> None:
    status = changes.get("status", render.status)
    if status not in TRANSITIONS:
        raise InvalidUpdate(f"unknown status {status!r}")
    if status not in TRANSITIONS[render.status]:
        raise InvalidUpdate(f"a {render.status} render cannot become {status}")
    if render.status in TERMINAL_STATUSES and set(changes) - TERMINAL_UPDATABLE - {"status"}:
        raise InvalidUpdate(f"a {render.status} render is final")
    if "progress" in changes:
        progress = changes["progress"]
        if not isinstance(progress, int) or isinstance(progress, bool):
            raise InvalidUpdate("progress must be an integer")
        if not 0 <= progress <= 100:
            raise InvalidUpdate("progress must be within 0..100")
        if progress < render.progress:
            raise InvalidUpdate(f"progress cannot go down ({render.progress} -> {progress})")


def newest_of_generation(session: Session, user_id: str, generation_id: str) -> Render | None:
    """The newest render of a generation the user owns (the seed's getByGeneration)."""
    if not is_id(generation_id):
        return None
    return session.execute(
        select(Render)
        .where(Render.generation_id == generation_id, Render.user_id == user_id)
        .order_by(Render.created_at.desc(), Render.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def list_by_user(
    session: Session, user_id: str, *, limit: int = 20, cursor: str | None = None
) -> Page[Render]:
    statement = select(Render).where(Render.user_id == user_id)
    return page_newest_first(session, statement, Render, limit, cursor)


def newest_by_generation(
    session: Session, user_id: str, generation_ids: Sequence[str]
) -> dict[str, Render]:
    """``{generation_id: newest render}`` for those of ``generation_ids`` that have one: a
    history page shows each generation with its newest render, in one windowed query."""
    if not generation_ids:
        return {}
    rank = (
        func.row_number()
        .over(
            partition_by=Render.generation_id,
            order_by=(Render.created_at.desc(), Render.id.desc()),
        )
        .label("rank")
    )
    ranked = (
        select(Render, rank)
        .where(Render.user_id == user_id, Render.generation_id.in_(list(generation_ids)))
        .subquery()
    )
    newest = aliased(Render, ranked)
    rows = session.execute(select(newest).where(ranked.c.rank == 1)).scalars()
    return {render.generation_id: render for render in rows}
