"""Revision 0003 adds ``by_user_status`` to a populated 0002 database, rows untouched, and the
concurrency cap's count reads through it rather than through every render of the user."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect
from sqlalchemy.orm import Session

from renderlab.db import upgrade
from renderlab.models import Render
from renderlab.pipeline.start import _RUNNING
from tests.sql_plans import assert_sqlite_uses
from tests.test_migration_0002 import _populate_at_0001, fresh_url

__all__ = ["fresh_url"]  # the fixture, shared with revision 0002's tests


def test_upgrade_from_a_populated_0002_keeps_rows_and_adds_the_index(fresh_url: str) -> None:
    upgrade(fresh_url, "0001")
    _populate_at_0001(fresh_url)
    upgrade(fresh_url, "0002")
    engine = create_engine(fresh_url)
    assert "by_user_status" not in {i["name"] for i in inspect(engine).get_indexes("renders")}
    upgrade(fresh_url)
    indexes = {i["name"]: i["column_names"] for i in inspect(engine).get_indexes("renders")}
    assert indexes["by_user_status"] == ["user_id", "status"]
    with Session(engine) as session:
        done, waiting = session.get(Render, "r1"), session.get(Render, "r2")
        assert done is not None and waiting is not None
        assert (done.status, done.output_size, waiting.status) == ("complete", 1234, "pending")
        running = session.execute(_RUNNING, {"user_id": "u1", "cap": 10}).scalar_one()
        assert running == 1
    count = (  # the count's predicate, as _RUNNING writes it
        "SELECT count(*) FROM renders WHERE user_id = 'u1' AND status IN ('pending', 'rendering')"
    )
    assert_sqlite_uses(engine, count, "by_user_status")
    engine.dispose()
