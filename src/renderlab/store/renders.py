"""Render CRUD: internal ``create`` / ``update`` for the pipeline, owner-scoped reads for users.

``update_render`` enforces the render's state machine, so no caller (a late worker, a
redelivered Celery task) can move a finished render back or make progress go down.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select
from sqlalchemy.orm import Session

from renderlab.clock import now_ms
from renderlab.ids import is_id, new_id
from renderlab.models import TERMINAL_STATUSES, Render
from renderlab.store.errors import InvalidUpdate, NotFound
from renderlab.store.paging import Page, page_newest_first

# pending -> rendering -> complete | failed; rendering -> pending when a lost worker's render is
# handed out again. Terminal states only accept a re-signed output URL.
TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"pending", "rendering", "failed"}),
    "rendering": frozenset({"rendering", "pending", "complete", "failed"}),
    "complete": frozenset({"complete"}),
    "failed": frozenset({"failed"}),
}
UPDATABLE = frozenset(
    {
        "status",
        "progress",
        "output_url",
        "output_size",
        "error",
        "completed_at",
        "render_id",
        "bucket_name",
        "output_key",
        "attempts",
        "started_at",
        "lease_owner",
        "lease_expires_at",
        "heartbeat_at",
        "quota_refunded",
    }
)
TERMINAL_UPDATABLE = frozenset({"output_url", "quota_refunded"})


@dataclass(frozen=True, slots=True)
class RenderSnapshot:
    """The user-visible columns of one render row at one moment (plus ``updated_at``)."""

    id: str
    user_id: str
    generation_id: str
    render_id: str | None
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
    updated_at: int
    output_key: str | None  # not shown; lets a read re-sign ``output_url``

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
_VISIBLE = tuple(name for name in _FIELDS if name not in ("updated_at", "output_key"))
RENDER_COLUMNS = [Render.__table__.c[name] for name in _FIELDS]
_ONE_RENDER = select(*RENDER_COLUMNS).where(Render.id == bindparam("render_id"))
_OWNED_RENDER = _ONE_RENDER.where(Render.user_id == bindparam("user_id"))
_INSERT_RENDER = insert(Render)


def insert_render(
    connection: Connection,
    *,
    user_id: str,
    generation_id: str,
    width: int,
    height: int,
    fps: int,
    duration_in_frames: int,
    codec: str = "h264",
    status: str = "pending",
    created_at: int | None = None,
) -> RenderSnapshot:
    """Insert a new render with one Core statement and return it as a snapshot.

    This is the write behind every ``POST /v1/renders``: the ORM's unit of work around one
    insert cost more than the insert, and the caller only needs the row's values back, which
    are all known before the statement runs.
    """
    if status not in ("pending", "rendering"):
        raise InvalidUpdate(f"a render starts pending or rendering, not {status}")
    now = now_ms()
    row = {
        "id": new_id(),
        "user_id": user_id,
        "generation_id": generation_id,
        "render_id": None,
        "bucket_name": None,
        "status": status,
        "progress": 0,
        "output_url": None,
        "output_size": None,
        "error": None,
        "created_at": created_at if created_at is not None else now,
        "completed_at": None,
        "width": width,
        "height": height,
        "fps": fps,
        "codec": codec,
        "duration_in_frames": duration_in_frames,
        "updated_at": now,
        "output_key": None,
    }
    connection.execute(_INSERT_RENDER, {**row, "attempts": 0, "quota_refunded": False})
    return RenderSnapshot(**row)


def create_render(session: Session, **fields: Any) -> Render:
    """:func:`insert_render` for ORM callers: the same row, returned as a ``Render``."""
    snapshot = insert_render(session.connection(), **fields)
    return get_render_internal(session, snapshot.id)


def find_snapshot(
    connection: Connection, render_id: str, user_id: str | None = None
) -> RenderSnapshot | None:
    """One render by id (only the user's, when ``user_id`` is given), read with one Core
    statement: the API's hottest read, where an ORM session would cost more than the query."""
    if not is_id(render_id):
        return None
    if user_id is None:
        row = connection.execute(_ONE_RENDER, {"render_id": render_id}).first()
    else:
        row = connection.execute(_OWNED_RENDER, {"render_id": render_id, "user_id": user_id})
        row = row.first()
    return None if row is None else RenderSnapshot(*row)


def get_render_internal(session: Session, render_id: str, *, lock: bool = False) -> Render:
    """Any user's render, for the pipeline. ``lock`` holds the row until the transaction ends."""
    if not is_id(render_id):
        raise NotFound("render not found")
    statement = select(Render).where(Render.id == render_id)
    if lock:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    render = session.execute(statement).scalar_one_or_none()
    if render is None:
        raise NotFound("render not found")
    return render


def find_render_internal(session: Session, render_id: str, *, lock: bool = False) -> Render | None:
    """Like :func:`get_render_internal`, but None for a missing render: the pipeline's
    compare-and-set steps treat a deleted render as "nothing to do"."""
    try:
        return get_render_internal(session, render_id, lock=lock)
    except NotFound:
        return None


def update_render(session: Session, id_: str, /, **changes: Any) -> Render:
    """Apply ``changes`` to render ``id_`` if its state machine allows them, else InvalidUpdate.

    ``id_`` is positional-only because ``render_id`` (the backend's job id, a seed field) is
    itself an updatable field.
    """
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise InvalidUpdate(f"not updatable: {', '.join(sorted(unknown))}")
    render = get_render_internal(session, id_, lock=True)
    _check(render, changes)
    if changes.get("status") == "complete":
        changes.setdefault("progress", 100)
        changes.setdefault("completed_at", now_ms())
    elif changes.get("status") == "failed" and render.status != "failed":
        changes.setdefault("completed_at", now_ms())
    for field, value in changes.items():
        setattr(render, field, value)
    render.updated_at = now_ms()
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


def get_render(session: Session, user_id: str, render_id: str) -> Render:
    render = get_render_internal(session, render_id)
    if render.user_id != user_id:
        raise NotFound("render not found")
    return render


def get_render_by_generation(session: Session, user_id: str, generation_id: str) -> Render | None:
    """The newest render of a generation the user owns (the seed's getByGeneration)."""
    if not is_id(generation_id):
        return None
    return session.execute(
        select(Render)
        .where(Render.generation_id == generation_id, Render.user_id == user_id)
        .order_by(Render.created_at.desc(), Render.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def list_renders_by_user(
    session: Session, user_id: str, *, limit: int = 20, cursor: str | None = None
) -> Page[Render]:
    statement = select(Render).where(Render.user_id == user_id)
    return page_newest_first(session, statement, Render, limit, cursor)
