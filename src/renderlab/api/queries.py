"""Read queries the API needs beyond the store's.

- ``latest_renders``: a history page shows each generation with its newest render; one
  windowed query for the whole page replaces one query per generation.
- ``read_render``: one render by id for its owner, on the fastest path SQLAlchemy has.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from renderlab.db import Database
from renderlab.models import Render
from renderlab.store import NotFound, RenderSnapshot, find_snapshot


def read_render(db: Database, user_id: str, render_id: str) -> RenderSnapshot:
    """The user's render, as ``store.get_render`` finds it (another user's render is not
    found), on a bare connection rather than a session."""
    with db.read_one() as connection:
        render = find_snapshot(connection, render_id, user_id)
    if render is None:
        raise NotFound("render not found")
    return render


def latest_renders(
    session: Session, user_id: str, generation_ids: Sequence[str]
) -> dict[str, Render]:
    """``{generation_id: newest render}`` for those of ``generation_ids`` that have one."""
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
