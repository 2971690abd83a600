"""Revision 0004 makes the cache-key, expiry and output-key indexes partial on a populated 0003
database, rows untouched, and the output cache's lookup still reads through its index."""

from __future__ import annotations

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from renderlab.db import upgrade
from renderlab.models import Render
from renderlab.pipeline.cache import _FIND_HIT
from tests.sql_plans import assert_sqlite_uses
from tests.test_migration_0002 import _populate_at_0001, fresh_url

__all__ = ["fresh_url"]  # the fixture, shared with revision 0002's tests

PARTIAL = {
    "by_cache_key": "cache_key",
    "by_expires": "expires_at",
    "by_output_key": "output_key",
    "by_poster_key": "poster_key",
}


def index_definitions(url: str) -> dict[str, str]:
    engine = create_engine(url)
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            rows = connection.execute(
                text("SELECT name, sql FROM sqlite_master WHERE tbl_name = 'renders'")
            )
        else:
            rows = connection.execute(
                text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'renders'")
            )
        found = {name: (sql or "") for name, sql in rows}
    engine.dispose()
    return found


def test_upgrade_from_a_populated_0003_keeps_rows_and_makes_the_indexes_partial(
    fresh_url: str,
) -> None:
    upgrade(fresh_url, "0001")
    _populate_at_0001(fresh_url)
    upgrade(fresh_url, "0003")
    before = index_definitions(fresh_url)
    assert "by_poster_key" not in before
    assert all("WHERE" not in before[name].upper() for name in PARTIAL if name in before)
    upgrade(fresh_url)
    after = index_definitions(fresh_url)
    for name, column in PARTIAL.items():
        assert f"{column} IS NOT NULL" in after[name], after[name]
    engine = create_engine(fresh_url)
    with Session(engine) as session:
        done, waiting = session.get(Render, "r1"), session.get(Render, "r2")
        assert done is not None and waiting is not None
        assert (done.output_key, done.output_size, waiting.status) == (
            "renders/u1/r1.mp4",
            1234,
            "pending",
        )
        session.execute(
            text("UPDATE renders SET cache_key = 'k1' WHERE id = 'r1'"),
        )
        hit = session.execute(_FIND_HIT, {"user_id": "u1", "cache_key": "k1"}).first()
        assert hit is not None and hit.id == "r1"
        session.rollback()
    lookup = (  # the cache lookup's predicate, as _FIND_HIT writes it
        "SELECT id FROM renders WHERE user_id = 'u1' AND cache_key = 'k1' "
        "AND status = 'complete' ORDER BY completed_at DESC LIMIT 1"
    )
    assert_sqlite_uses(engine, lookup, "by_cache_key")
    others = (  # who else references a file, as pipeline.delete.unreferenced asks
        "SELECT output_key, poster_key FROM renders WHERE "
        "output_key IN ('a', 'b') OR poster_key IN ('a', 'b')"
    )
    assert_sqlite_uses(engine, others, "by_poster_key")
    engine.dispose()


def test_downgrade_to_0003_restores_the_full_indexes(fresh_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    upgrade(fresh_url)
    config = Config()  # as renderlab.db.upgrade builds it
    config.set_main_option("script_location", "renderlab:migrations")
    config.set_main_option("sqlalchemy.url", fresh_url.replace("%", "%%"))
    command.downgrade(config, "0003")
    after = index_definitions(fresh_url)
    assert "by_poster_key" not in after
    assert all("WHERE" not in after[name].upper() for name in PARTIAL if name in after)
