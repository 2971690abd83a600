"""Shared fixtures: real SQLite files and a real PostgreSQL database, never mocks.

PostgreSQL and Redis must be reachable (``.ci/run`` starts them); a fixture that cannot reach
them fails the test rather than skipping it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from renderlab.config import Settings
from renderlab.db import Database, upgrade
from renderlab.limits import Limits
from renderlab.models import Base
from renderlab.services import Services
from tests.pipeline_helpers import FAST_LIMITS, pipeline_services

pytest_plugins = ["tests.s3_server"]

# Renders keep their flat slices in a cache directory (render/diskcache.py): the suite's own,
# never the user's ~/.cache, and shared by its processes and the servers they start.
if "RENDERLAB_CACHE_DIR" not in os.environ:
    os.environ["RENDERLAB_CACHE_DIR"] = tempfile.mkdtemp(prefix="renderlab-test-cache-")
    atexit.register(shutil.rmtree, os.environ["RENDERLAB_CACHE_DIR"], ignore_errors=True)

PG_ADMIN_URL = os.environ.get(
    "RENDERLAB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("RENDERLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
BACKENDS = ["sqlite", "postgresql"]


class FakeClock:
    """An injectable clock in epoch milliseconds that tests move by hand."""

    def __init__(self, start: int = 1_700_000_000_000) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


def _pg_url(database: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database


def create_pg_database() -> str:
    """A fresh, migrated PostgreSQL database; each test session gets its own."""
    name = f"renderlab_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - the environment is broken
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {exc}")
    finally:
        admin.dispose()
    url = _pg_url(name)
    upgrade(url)
    return url


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def truncate_all(url: str) -> None:
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} CASCADE"))
    engine.dispose()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    url = create_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "renderlab.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        path = tmp_path / "renderlab.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_url")
    truncate_all(url)
    return url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limits() -> Limits:
    return Limits()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url)


@pytest.fixture
def services(settings: Settings, limits: Limits, db: Database, clock: FakeClock) -> Services:
    return Services(settings=settings, limits=limits, db=db, clock=clock)


@pytest.fixture
def svc_limits() -> dict[str, Any]:
    """The limits of ``svc``: short timings. A test module overrides this fixture for others."""
    return FAST_LIMITS


@pytest.fixture
def svc(services: Services, clock: FakeClock, svc_limits: dict[str, Any]) -> Services:
    """The conftest services (fake clock) with ``svc_limits`` and real local storage: what the
    pipeline tests run renders against."""
    return pipeline_services(services.settings, services.db, Limits(**svc_limits), clock=clock)
