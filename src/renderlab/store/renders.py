"""Render CRUD: internal ``create`` / ``update`` for the pipeline, owner-scoped reads for users.

``update_render`` enforces the render's state machine, so no caller (a late worker, a
redelivered Celery task) can move a finished render back or make progress go down.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from renderlab.clock import now_ms
from renderlab.ids import is_id
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


def create_render(
    session: Session,
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
) -> Render:
    if status not in ("pending", "rendering"):
        raise InvalidUpdate(f"a render starts pending or rendering, not {status}")
    render = Render(
        user_id=user_id,
        generation_id=generation_id,
        width=width,
        height=height,
        fps=fps,
        codec=codec,
        duration_in_frames=duration_in_frames,
        status=status,
        progress=0,
        attempts=0,
        quota_refunded=False,
        created_at=created_at if created_at is not None else now_ms(),
    )
    session.add(render)
    session.flush()
    return render


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
