"""Migrations reach head on both databases and build the seed's indexes and constraints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, inspect, text

from renderlab.db import Database, upgrade


def test_schema_at_head_has_the_seeds_fields_and_indexes(database_url: str) -> None:
    engine = create_engine(database_url)
    inspector = inspect(engine)
    columns = {c["name"] for c in inspector.get_columns("renders")}
    assert {
        "user_id",
        "generation_id",
        "render_id",
        "bucket_name",
        "status",
        "progress",
        "output_url",
        "output_size",
        "error",
        "created_at",
        "completed_at",
        "width",
        "height",
        "fps",
        "codec",
        "duration_in_frames",
        "output_key",
        "attempts",
        "lease_expires_at",
    } <= columns
    indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes("renders")}
    assert indexes["by_user"][0] == "user_id"
    assert indexes["by_generation"][0] == "generation_id"
    assert indexes["by_status"][0] == "status"
    assert {"users", "generations", "rate_limits", "idempotency_keys"} <= set(
        inspector.get_table_names()
    )
    uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("users")}
    assert ("token_identifier",) in uniques
    engine.dispose()


def test_upgrade_twice_is_harmless(tmp_path: Path) -> None:
    """A second upgrade changes nothing: same head revision, same tables, rows kept."""
    url = f"sqlite:///{tmp_path / 'x.db'}"
    upgrade(url)
    engine = create_engine(url)
    with engine.begin() as connection:
        head = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        tables = set(inspect(connection).get_table_names())
        connection.execute(
            text("INSERT INTO users (id, token_identifier, created_at) VALUES ('u', 't', 1)")
        )
    upgrade(url)
    with engine.connect() as connection:
        again = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        assert again == [(head,)]
        assert set(inspect(connection).get_table_names()) == tables
        assert connection.execute(text("SELECT count(*) FROM users")).scalar_one() == 1
    engine.dispose()
    Database(url).dispose()


def test_cli_db_upgrade_creates_the_embedded_database(tmp_path: Path) -> None:
    env = {**os.environ, "RENDERLAB_DATA_DIR": str(tmp_path / "data")}
    env.pop("RENDERLAB_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "renderlab", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    engine = create_engine(f"sqlite:///{tmp_path / 'data' / 'renderlab.db'}")
    assert "renders" in inspect(engine).get_table_names()
    engine.dispose()
