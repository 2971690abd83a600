"""SQLite's query plans, for tests that an index serves a statement."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine


def sqlite_plan(engine: Engine, sql: str, values: Sequence[Any] = ()) -> str:
    """``EXPLAIN QUERY PLAN`` of ``sql``, its steps joined with " / "."""
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", tuple(values)).fetchall()
    return " / ".join(str(row[-1]) for row in rows)


def assert_sqlite_uses(engine: Engine, sql: str, index: str) -> None:
    """On SQLite, ``sql`` is planned through ``index`` (PostgreSQL plans by its statistics)."""
    if engine.dialect.name == "sqlite":
        plan = sqlite_plan(engine, sql)
        assert index in plan, plan
