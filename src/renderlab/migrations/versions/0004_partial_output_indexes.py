"""partial indexes for the columns a new render leaves null: cache key, expiry, output and
poster keys

Every ``POST /v1/renders`` inserts a pending render whose ``cache_key``, ``expires_at`` and
``output_key`` are null until it completes (or is an output-cache hit), yet each of their three
indexes took an entry for it: three more b-trees written at the insert and their pages in the
commit. Their readers always name a value (``cache_key = ?``, ``expires_at < ?``,
``output_key IN (...)``), which both SQLite and PostgreSQL take as implying ``IS NOT NULL``, so
an index of only the non-null rows serves them the same. Measured on SQLite, an insert and
commit of a pending render: 67-72 -> 54-57 us.

``by_poster_key`` is new: deleting or expiring a render asks which of its files another render
still references (``output_key IN (...) OR poster_key IN (...)``, ``pipeline.delete``), and
with no index on the poster key SQLite scanned every render for it; with both, the OR is two
index searches. Indexes only: rows are untouched.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 01:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from alembic.operations import BatchOperations

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = (
    ("by_cache_key", ["user_id", "cache_key"], "cache_key"),
    ("by_expires", ["expires_at"], "expires_at"),
    ("by_output_key", ["output_key"], "output_key"),
)
_NEW = ("by_poster_key", ["poster_key"], "poster_key")


def _partial(batch_op: BatchOperations, name: str, columns: list[str], column: str) -> None:
    where = sa.text(f"{column} IS NOT NULL")
    batch_op.create_index(name, columns, unique=False, sqlite_where=where, postgresql_where=where)


def upgrade() -> None:
    with op.batch_alter_table("renders", schema=None) as batch_op:
        for name, columns, column in _INDEXES:
            batch_op.drop_index(name)
            _partial(batch_op, name, columns, column)
        _partial(batch_op, *_NEW)


def downgrade() -> None:
    with op.batch_alter_table("renders", schema=None) as batch_op:
        batch_op.drop_index(_NEW[0])
        for name, columns, _ in _INDEXES:
            batch_op.drop_index(name)
            batch_op.create_index(name, columns, unique=False)
