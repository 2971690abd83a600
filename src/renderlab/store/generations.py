"""Generations: a user's TextAnimation props, validated before they are stored."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from renderlab.compositions import TextAnimationProps
from renderlab.ids import is_id
from renderlab.models import Generation, RenderStatus
from renderlab.store.errors import NotFound
from renderlab.store.paging import Page, page_newest_first


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


_PROPS = select(Generation.animation_props).where(
    Generation.id == bindparam("generation_id"), Generation.user_id == bindparam("user_id")
)


def generation_props(connection: Connection, user_id: str, generation_id: str) -> dict[str, Any]:
    """The stored props of the user's generation, with one Core statement: starting a render
    needs only them, and it is the hottest write path."""
    if not is_id(generation_id):
        raise NotFound("generation not found")
    props = connection.execute(
        _PROPS, {"generation_id": generation_id, "user_id": user_id}
    ).scalar_one_or_none()
    if props is None:
        raise NotFound("generation not found")
    return props


def list_generations(
    session: Session, user_id: str, *, limit: int = 20, cursor: str | None = None
) -> Page[Generation]:
    statement = select(Generation).where(Generation.user_id == user_id)
    return page_newest_first(session, statement, Generation, limit, cursor)
