"""Users are created on first sight of a valid token (the seed's ``users`` table)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from renderlab.ids import new_id
from renderlab.models import User


def get_user_by_token(session: Session, token_identifier: str) -> User | None:
    return session.execute(
        select(User).where(User.token_identifier == token_identifier)
    ).scalar_one_or_none()


def get_or_create_user(
    session: Session,
    token_identifier: str,
    *,
    email: str | None = None,
    name: str | None = None,
    image_url: str | None = None,
) -> User:
    """Race-free upsert: two first requests of a new user create one row."""
    user = get_user_by_token(session, token_identifier)
    if user is not None:
        return user
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        insert(User)
        .values(
            id=new_id(),
            token_identifier=token_identifier,
            email=email,
            name=name,
            image_url=image_url,
        )
        .on_conflict_do_nothing(index_elements=["token_identifier"])
    )
    user = get_user_by_token(session, token_identifier)
    assert user is not None
    return user
