"""``Database.write`` on file-backed SQLite runs Core statements on ``rowreader``'s own
connection, without SQLAlchemy's execution machinery: what it writes must read back the same
through SQLAlchemy (and the other way round), fail with SQLAlchemy's errors, roll back whole,
and leave the pool's connections to everyone else."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from renderlab import store
from renderlab.clock import now_ms
from renderlab.db import Database, Executor, upgrade
from renderlab.models import Generation, Render
from renderlab.rowreader import RawTransaction
from tests.factories import make_generation, make_user


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'renderlab.db'}"
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


def _insert(connection: Executor, user: str, generation: str) -> store.RenderSnapshot:
    return store.insert(
        connection,
        now=now_ms(),
        user_id=user,
        generation_id=generation,
        width=1080,
        height=1920,
        fps=30,
        duration_in_frames=90,
        codec="webm",
        poster_frame=3,
        warnings=["alpha is lost", "naïve ✓"],
        render_metadata={"project": "é", "tags": [1, None, True]},
        webhook_url="https://example.com/hook",
    )


def test_a_row_written_raw_reads_the_same_through_sqlalchemy_and_back(db: Database) -> None:
    user = make_user(db)
    generation = make_generation(db, user)
    with db.write() as connection:
        assert isinstance(connection, RawTransaction)  # the fast path is the one in use
        raw = _insert(connection, user, generation)
    with db.write(sqlalchemy=True) as connection:
        assert not isinstance(connection, RawTransaction)
        orm = _insert(connection, user, generation)
    with db.session() as session:
        row = session.get(Render, raw.id)
        assert row is not None
        assert store.RenderSnapshot.of(row) == raw  # JSON columns, booleans, NULLs alike
        assert row.warnings == ["alpha is lost", "naïve ✓"]
        assert row.render_metadata == {"project": "é", "tags": [1, None, True]}
        assert row.output_expired is False and row.quota_refunded is False
    # Read back on the raw path (Database.first, the API's render read), either way written.
    assert store.find(db, raw.id) == raw
    assert store.find(db, orm.id, user_id=user) == orm


def test_a_failing_statement_is_sqlalchemys_error_and_rolls_everything_back(
    db: Database,
) -> None:
    user = make_user(db)
    generation = make_generation(db, user)
    with pytest.raises(IntegrityError), db.write() as connection:
        first = _insert(connection, user, generation)
        _insert(connection, user, "01J00000000000000000000000")  # no such generation: FK
    assert store.find(db, first.id) is None, "the first insert was rolled back with the second"
    with db.write() as connection:  # and the connection is usable again
        assert store.find(connection, _insert(connection, user, generation).id) is not None


def test_rows_read_on_the_raw_path_have_their_columns_by_name(db: Database) -> None:
    user = make_user(db)
    generation = make_generation(db, user)
    statement = select(Generation.id, Generation.animation_props).where(Generation.user_id == user)
    with db.write() as connection:
        row = connection.execute(statement).first()
    assert row.id == generation
    assert row.animation_props["style"] == "fade-in"  # JSON, decoded


def test_threads_that_write_keep_no_pooled_connection(db: Database) -> None:
    """Each thread keeps its own SQLite connection for the raw path; were it taken from the
    pool and kept, the 16th thread (5 + 10 overflow) would wait 30 s for a free one."""
    user = make_user(db)
    generation = make_generation(db, user)
    threads_count = 24
    all_written = threading.Barrier(threads_count + 1)
    failures: list[BaseException] = []

    def write() -> None:
        try:
            with db.write() as connection:
                _insert(connection, user, generation)
        except BaseException as exc:  # reported below
            failures.append(exc)
        all_written.wait(timeout=60)  # stay alive, holding whatever this thread holds

    threads = [threading.Thread(target=write) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    all_written.wait(timeout=60)
    with db.session() as session:  # a pooled connection is still there for the ORM
        assert session.execute(select(Render.id)).all()
    for thread in threads:
        thread.join()
    assert failures == []
    with db.session() as session:
        assert len(session.execute(select(Render.id)).all()) == threads_count
