"""Revision 0002 upgrades a populated 0001 database without losing or breaking a row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from renderlab.compositions import TextAnimationProps
from renderlab.db import upgrade
from renderlab.models import Base, Generation, Render, WebhookDelivery, WebhookEvent
from tests.conftest import create_pg_database, drop_pg_database

PROPS = {"text": "Hello", "style": "fade-in", "color": "#FFFFFF", "duration_in_frames": 60}


def _populate_at_0001(url: str) -> None:
    """Rows as revision 0001 wrote them: a user, a generation, a complete and a pending render."""
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO users (id, token_identifier, created_at) VALUES ('u1', 'i|a', 1)")
        )
        connection.execute(
            text(
                "INSERT INTO generations (id, user_id, animation_props, status, created_at) "
                "VALUES ('g1', 'u1', :props, 'complete', 2)"
            ),
            {"props": json.dumps(PROPS)},
        )
        for rid, status in (("r1", "complete"), ("r2", "pending")):
            connection.execute(
                text(
                    "INSERT INTO renders (id, user_id, generation_id, status, progress, "
                    "created_at, width, height, fps, codec, duration_in_frames, attempts, "
                    "quota_refunded, updated_at, output_key, output_size) VALUES (:id, 'u1', "
                    "'g1', :status, 0, 3, 1920, 1080, 30, 'h264', 60, 0, false, 3, :key, :size)"
                ),
                {
                    "id": rid,
                    "status": status,
                    "key": "renders/u1/r1.mp4" if status == "complete" else None,
                    "size": 1234 if status == "complete" else None,
                },
            )
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    url = create_pg_database_at_base()
    yield url
    drop_pg_database(url)


def create_pg_database_at_base() -> str:
    """An empty PostgreSQL database (``create_pg_database`` migrates it to head; undo that)."""
    url = create_pg_database()
    engine = create_engine(url)
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(text(f'DROP TABLE IF EXISTS "{table.name}" CASCADE'))
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()
    return url


def test_upgrade_from_a_populated_0001_keeps_every_row_readable(fresh_url: str) -> None:
    upgrade(fresh_url, "0001")
    _populate_at_0001(fresh_url)
    upgrade(fresh_url)
    engine = create_engine(fresh_url)
    with Session(engine) as session:
        done = session.get(Render, "r1")
        waiting = session.get(Render, "r2")
        assert done is not None and waiting is not None
        assert (done.status, done.output_key, done.output_size) == (
            "complete",
            "renders/u1/r1.mp4",
            1234,
        )
        assert done.warnings == [] and waiting.warnings == []
        assert done.output_expired is False
        assert done.poster_frame is None and done.expires_at is None
        assert done.render_metadata is None and done.webhook_url is None
        generation = session.get(Generation, "g1")
        assert generation is not None
        props = TextAnimationProps(**generation.animation_props)
        assert props.text == "Hello" and props.duration_in_frames == 60
    engine.dispose()


def test_models_and_migrations_describe_the_same_schema(database_url: str) -> None:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert diff == []


def test_outbox_rows_round_trip(database_url: str) -> None:
    engine = create_engine(database_url)
    with Session(engine) as session:
        session.add(
            WebhookEvent(
                id="msg_1",
                render_id="r",
                user_id="u",
                type="render.completed",
                url="http://127.0.0.1:9/hook",
                payload={"a": 1},
                next_attempt_at=5,
            )
        )
        session.flush()
        session.add(WebhookDelivery(event_id="msg_1", render_id="r", attempt=1, status_code=500))
        session.commit()
    with Session(engine) as session:
        event = session.get(WebhookEvent, "msg_1")
        assert event is not None and (event.status, event.attempts) == ("pending", 0)
        assert session.query(WebhookDelivery).one().status_code == 500
    engine.dispose()
