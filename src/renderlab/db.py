"""Engines, sessions and migrations for SQLite (embedded default) and PostgreSQL.

Writes go through :meth:`Database.transaction`. On SQLite that transaction starts with
``BEGIN IMMEDIATE``: it takes the write lock before the first read, so two writers never read
the same quota state and then both commit (SQLite would otherwise fail the second one with
``database is locked`` instead of making it wait). Reads use plain deferred transactions and,
in WAL mode, never block or get blocked by the writer.

SQLite has one writer, and a second ``BEGIN IMMEDIATE`` waits in SQLite's busy handler, which
sleeps in growing steps (up to 100 ms) instead of waking when the lock frees: under concurrent
requests that turns a 2 ms transaction into second-long tails. So writers queue on a lock of
their own first (:class:`WriterQueue`), which wakes the next the moment the previous one
commits: a thread lock within a process, and an ``flock`` on a file beside the database
between processes (the API and its render workers, or several API processes).
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, Executable, create_engine, event, make_url
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from renderlab.rowreader import RowReader

try:
    import fcntl
except ImportError:  # Windows: writers of one process still queue; other processes use
    fcntl = None  # type: ignore[assignment]  # SQLite's busy handler, as before

_IMMEDIATE = "renderlab_immediate"
_NO_BEGIN = "renderlab_no_begin"
SQLITE_BUSY_TIMEOUT_S = 30.0


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy's "begin" event below (pysqlite's own
        # implicit BEGIN would be deferred and could not be made IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        if options.get(_NO_BEGIN, False):
            return  # each statement is its own transaction (Database.read_one)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if options.get(_IMMEDIATE) else "BEGIN")


class Rows(Protocol):
    """What a statement returned, as far as the hot paths read it."""

    @property
    def rowcount(self) -> int: ...
    def first(self) -> Any: ...
    def scalar_one(self) -> Any: ...
    def scalar_one_or_none(self) -> Any: ...


class Executor(Protocol):
    """Where Core statements of a write transaction run: a SQLAlchemy ``Connection``, or on
    file-backed SQLite the faster :class:`~renderlab.rowreader.RawTransaction`
    (:meth:`Database.write`). Code written against this runs on either."""

    @property
    def dialect(self) -> Dialect: ...
    def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> Rows: ...


class WriterQueue:
    """The SQLite writers' queue: a thread lock, then an exclusive ``flock`` on ``path``.

    The kernel hands the file lock to the next waiting process as soon as it is released, and a
    blocked thread holds no GIL while it waits. The file is opened on first use in each
    process; a forked child (a Celery pool process) starts with a fresh thread lock and its
    own file, since what it inherited may be held by a thread that does not exist in it, and a
    lock belongs to an open file description.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        _QUEUES.add(self)

    def acquire(self, blocking: bool = True) -> bool:
        """Take the queue (waiting for it, or with ``blocking=False`` only if it is free now:
        True if taken)."""
        if not self._thread_lock.acquire(blocking):
            return False
        if fcntl is None:
            return True
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._thread_lock.release()
            return False
        except BaseException:
            self._thread_lock.release()
            raise
        return True

    def release(self) -> None:
        try:
            if self._fd is not None and fcntl is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(self, *_exc: object) -> None:
        self.release()

    def _forget_parent(self) -> None:
        self._thread_lock = threading.Lock()
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


_QUEUES: weakref.WeakSet[WriterQueue] = weakref.WeakSet()


class Lock(Protocol):
    """What :class:`Database` queues its writers on (``threading.Lock`` has the same)."""

    def acquire(self, blocking: bool = True) -> bool: ...
    def release(self) -> None: ...


class _Unqueued:
    """PostgreSQL's writers need no queue of ours: its row locks order them."""

    def acquire(self, blocking: bool = True) -> bool:
        return True

    def release(self) -> None:
        pass


class WriterBusy(Exception):
    """``Database.write(wait=False)``: another writer holds the queue at this instant."""


def _after_fork_in_child() -> None:
    for queue in list(_QUEUES):
        queue._forget_parent()


if hasattr(os, "register_at_fork"):  # no fork() on Windows
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Database:
    """One engine per process, with a read path and a serialised-write path."""

    def __init__(self, url: str, *, pool_size: int = 10, null_pool: bool = False) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {}
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                keep_private(Path(parsed.database).expanduser())
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
        elif not null_pool:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size * 2, pool_pre_ping=True)
        if null_pool:
            kwargs["poolclass"] = NullPool
        self.engine = create_engine(url, **kwargs)
        if self.dialect == "sqlite":
            _sqlite_setup(self.engine)
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._write_engine = self.engine.execution_options(**{_IMMEDIATE: True})
        self._single_reader = self.engine.execution_options(**{_NO_BEGIN: True})
        self._writer = sessionmaker(self._write_engine, expire_on_commit=False)
        self._write_lock: Lock = _Unqueued()
        file_backed = False
        if self.dialect == "sqlite":
            database = parsed.database or ""
            file_backed = bool(database) and database != ":memory:" and "mode=memory" not in url
            self._write_lock = (
                WriterQueue(Path(f"{Path(database).expanduser()}.writers"))
                if file_backed
                else threading.Lock()
            )
        self._rows = RowReader(self.engine, enabled=file_backed)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read session; nothing it does is committed."""
        with self._reader() as session:
            try:
                yield session
            finally:
                session.rollback()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write transaction: committed when the block ends, rolled back if it raises."""
        with self._queued(), self._writer() as session, session.begin():
            yield session

    @contextmanager
    def read_one(self) -> Iterator[Connection]:
        """A bare connection for ONE read statement, which SQLite runs as its own transaction:
        the BEGIN and ROLLBACK around it would cost as much as the query (a render read by its
        id, the API's hottest path). Two statements here may see two states of the database."""
        with self._single_reader.connect() as connection:
            yield connection

    @property
    def reads_inline(self) -> bool:
        """Whether :meth:`first` is cheap enough to run on an event loop (file-backed
        SQLite: no round trip, ~15 us); elsewhere it belongs on a thread."""
        return self._rows.enabled

    def first(self, statement: Executable, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row of one SELECT (an indexed lookup), or None: through
        :class:`~renderlab.rowreader.RowReader` on SQLite, a bare pooled connection elsewhere."""
        if self._rows.enabled:
            return self._rows.first(statement, params)
        with self.read_one() as connection:
            row = connection.execute(statement, dict(params)).first()
        return None if row is None else tuple(row)

    @contextmanager
    def write(self, *, sqlalchemy: bool = False, wait: bool = True) -> Iterator[Executor]:
        """:meth:`transaction` without the ORM, for hot paths written as Core statements
        (starting a render), where a session's bookkeeping would cost more than the statements.

        On file-backed SQLite the statements run on :class:`~renderlab.rowreader.RowReader`'s
        connection of this thread (a render start in-process: 610 -> 265 us here);
        ``sqlalchemy=True`` (and every other database) gives a SQLAlchemy ``Connection``, for a
        block that joins an ORM session to it (an output-cache hit completes through the
        lifecycle). ``wait=False``: :class:`WriterBusy` at once, before anything is run, if
        another writer holds the queue (a write tried on an event loop, which must not block)."""
        with self._queued(wait):
            if self._rows.enabled and not sqlalchemy:
                with self._rows.transaction() as transaction:
                    yield transaction
                return
            with self._write_engine.connect() as connection, connection.begin():
                yield connection

    @contextmanager
    def _queued(self, wait: bool = True) -> Iterator[None]:
        if not self._write_lock.acquire(wait):
            raise WriterBusy
        try:
            yield
        finally:
            self._write_lock.release()

    def dispose(self) -> None:
        self.engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    """Apply Alembic migrations to ``url``; safe to call on every start."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "renderlab:migrations")
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if make_url(url).get_backend_name() == "sqlite":
        database = make_url(url).database
        if database and database != ":memory:":
            keep_private(Path(database).expanduser())
    command.upgrade(config, revision)


def keep_private(database: Path) -> None:
    """The SQLite file and its WAL and SHM files readable by their owner only (0600), like the
    secrets in the same data dir: they hold every user's prompts.

    SQLite creates ``-wal`` and ``-shm`` with the database file's own permissions, so making
    the file 0600 before SQLite first opens it covers those; files an older version made with
    the default umask are narrowed here too."""
    if str(database).startswith("file:"):  # a URI filename (in-memory or with options)
        return
    database.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # a read-only location: SQLite says so when it opens
        os.close(os.open(database, os.O_RDWR | os.O_CREAT, 0o600))
    for suffix in ("", "-wal", "-shm", "-journal"):
        path = Path(f"{database}{suffix}")
        with contextlib.suppress(OSError):
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
