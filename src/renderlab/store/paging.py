"""Newest-first keyset paging with an opaque cursor over ``(created_at, id)``.

Keyset rather than offset paging: a page never repeats or skips rows when new ones arrive
while a client is paging, and each page is one index range scan.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import Session

from renderlab.ids import is_id

T = TypeVar("T")


class InvalidCursor(ValueError):
    pass


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None


def encode_cursor(created_at: int, row_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at}:{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, row_id = raw.split(":", 1)
        created_at = int(created)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor("cursor is not one this server handed out") from None
    if not is_id(row_id) or created_at < 0:
        raise InvalidCursor("cursor is not one this server handed out")
    return created_at, row_id


def page_newest_first(
    session: Session, statement: Select[Any], model: Any, limit: int, cursor: str | None
) -> Page[Any]:
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if cursor:
        created_at, row_id = decode_cursor(cursor)
        statement = statement.where(
            or_(
                model.created_at < created_at,
                and_(model.created_at == created_at, model.id < row_id),
            )
        )
    statement = statement.order_by(model.created_at.desc(), model.id.desc()).limit(limit + 1)
    rows = list(session.execute(statement).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id) if more and rows else None
    return Page(rows, next_cursor)
