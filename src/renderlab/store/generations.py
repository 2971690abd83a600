"""Generations: a user's TextAnimation props, validated before they are stored."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Text, bindparam, cast, select
from sqlalchemy.orm import Session, aliased

from renderlab.compositions import TextAnimationProps
from renderlab.db import Database, Executor
from renderlab.ids import is_id
from renderlab.models import Generation, Render, RenderStatus
from renderlab.store.errors import NotFound
from renderlab.store.paging import Page, page_newest_first
from renderlab.store.renders import RENDER_COLUMNS, RenderSnapshot


def create_generation(
    session: Session,
    user_id: str,
    props: TextAnimationProps | dict[str, Any],
    *,
    prompt: str | None = None,
) -> Generation:
    """Store props; a dict is validated first, so nothing invalid is ever written."""
    valid = props if isinstance(props, TextAnimationProps) else TextAnimationProps(**props)
    generation = Generation(
        user_id=user_id,
        prompt=prompt,
        animation_props=valid.model_dump(mode="json"),
        status=RenderStatus.COMPLETE,
    )
    session.add(generation)
    session.flush()
    return generation


def get_generation(session: Session, user_id: str, generation_id: str) -> Generation:
    if not is_id(generation_id):
        raise NotFound("generation not found")
    generation = session.get(Generation, generation_id)
    if generation is None or generation.user_id != user_id:
        raise NotFound("generation not found")
    return generation


@dataclass(frozen=True, slots=True)
class GenerationSnapshot:
    """The columns of one generation row that readers see."""

    id: str
    user_id: str
    prompt: str | None
    animation_props: str
    """The stored JSON text (``GenerationOut.json_of`` parses it once per generation)."""
    status: str
    created_at: int


_GENERATION_COLUMNS = (
    Generation.id,
    Generation.user_id,
    Generation.prompt,
    # As stored: the API serialises a generation once (``GenerationOut.json_of``), and parsing
    # the props of every read only to find them in that cache cost as much as the rest.
    cast(Generation.animation_props, Text).label("animation_props"),
    Generation.status,
    Generation.created_at,
)
_newer = aliased(Render)
# Only the generation in the subquery, so that it is a search of ``by_generation``: with the
# user's id there too, SQLite chose ``by_user`` and walked the user's renders, newest first,
# until one of this generation came up. The render's owner is checked in the join instead.
_NEWEST_RENDER_ID = (
    select(_newer.id)
    .where(_newer.generation_id == Generation.id)
    .order_by(_newer.created_at.desc(), _newer.id.desc())
    .limit(1)
    .correlate(Generation)
    .scalar_subquery()
)
_WITH_NEWEST_RENDER = (
    select(*_GENERATION_COLUMNS, *RENDER_COLUMNS)
    .select_from(Generation)
    .outerjoin(Render, (Render.id == _NEWEST_RENDER_ID) & (Render.user_id == Generation.user_id))
    .where(Generation.id == bindparam("generation_id"), Generation.user_id == bindparam("user_id"))
)


def get_with_newest_render(
    db: Database, user_id: str, generation_id: str
) -> tuple[GenerationSnapshot, RenderSnapshot | None]:
    """The user's generation and its newest render (the seed's getByGeneration), in one
    statement on the database's fastest read path (``Database.first``), or NotFound."""
    if not is_id(generation_id):
        raise NotFound("generation not found")
    row = db.first(_WITH_NEWEST_RENDER, {"generation_id": generation_id, "user_id": user_id})
    if row is None:
        raise NotFound("generation not found")
    width = len(_GENERATION_COLUMNS)
    render = RenderSnapshot(*row[width:]) if row[width] is not None else None
    return GenerationSnapshot(*row[:width]), render


_PROPS = select(cast(Generation.animation_props, Text)).where(
    Generation.id == bindparam("generation_id"), Generation.user_id == bindparam("user_id")
)


def generation_props(connection: Executor, user_id: str, generation_id: str) -> TextAnimationProps:
    """The stored props of the user's generation, validated, with one Core statement: starting
    a render needs only them, and it is the hottest write path. A generation never changes
    once stored, so the same stored text is validated once (:func:`props_of_stored`)."""
    if not is_id(generation_id):
        raise NotFound("generation not found")
    stored = connection.execute(
        _PROPS, {"generation_id": generation_id, "user_id": user_id}
    ).scalar_one_or_none()
    if stored is None:
        raise NotFound("generation not found")
    return props_of_stored(stored)


CACHED_GENERATIONS = 512
"""Generations whose parsed props (here) and serialised part (``GenerationOut.json_of``) each
process keeps: a stored text is a few hundred bytes, at worst (500 emoji, escaped) about 20 KB,
so each cache stays under 10 MB."""


@functools.lru_cache(maxsize=CACHED_GENERATIONS)
def props_of_stored(stored: str) -> TextAnimationProps:
    """Props from a generation's stored JSON text, validated by today's rules (a row of an
    earlier revision gets the defaults of fields added since). The props are frozen, so one
    instance serves every start of that generation; what fails validation is not cached."""
    return TextAnimationProps(**json.loads(stored))


def list_generations(
    session: Session, user_id: str, *, limit: int = 20, cursor: str | None = None
) -> Page[Generation]:
    statement = select(Generation).where(Generation.user_id == user_id)
    return page_newest_first(session, statement, Generation, limit, cursor)
