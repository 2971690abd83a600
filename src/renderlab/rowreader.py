"""SQLite statements of the API's hot paths, without SQLAlchemy's per-statement machinery.

A render read by its id is one indexed SQLite lookup of about 15 us; through a pooled
SQLAlchemy connection and a compiled Core statement it cost 230 us here (checkout, reset on
return, execution context, result object), and on a database thread as much again in the hop
and the GIL handed back and forth. Starting a render is seven such statements in one write
transaction, and SQLAlchemy's share of it was about half the server's time per creation.

:class:`RowReader` compiles each Core statement once for the engine's dialect, keeps one DBAPI
connection per thread (SQLite needs no round trip, so the API runs these reads on its event
loop), and converts values with the same bind and result processors SQLAlchemy applies (JSON
columns, booleans), so a row is written and read the same either way. Errors are SQLAlchemy's
(``IntegrityError``, ``OperationalError``), so callers handle one set of exceptions.

File-backed SQLite only: :attr:`RowReader.enabled` is false for PostgreSQL (a read is a network
round trip, and its connections belong to the pool) and in-memory SQLite (every connection is
its own database); :class:`renderlab.db.Database` then runs statements on a pooled
connection, as before.
"""

from __future__ import annotations

import os
import threading
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Executable
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound

Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    order: tuple[str, ...]  # the parameters' names in positional order
    fixed: dict[str, Any]  # values the statement carries itself (a LIMIT's), already bound
    binds: dict[str, Processor]  # bind processors of the caller's parameters, by name
    converted: tuple[tuple[int, Processor], ...]  # (column, its result processor)
    row: type[tuple[Any, ...]]  # the returned rows' type: fields named as the columns

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        binds, fixed = self.binds, self.fixed
        out = []
        for name in self.order:
            if name not in params:
                out.append(fixed[name])
                continue
            value = params[name]
            convert = binds.get(name)
            out.append(value if convert is None or value is None else convert(value))
        return out

    def row_of(self, raw: tuple[Any, ...]) -> tuple[Any, ...]:
        if not self.converted:
            return self.row._make(raw)  # type: ignore[attr-defined]
        values = list(raw)
        for index, convert in self.converted:
            if values[index] is not None:
                values[index] = convert(values[index])
        return self.row._make(values)  # type: ignore[attr-defined]


class Rows:
    """What one statement returned: the few methods of SQLAlchemy's result that callers use."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def scalar_one_or_none(self) -> Any:
        if len(self._rows) > 1:
            raise MultipleResultsFound("Multiple rows were found when one or none was required")
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        if not self._rows:
            raise NoResultFound("No row was found when one was required")
        return self.scalar_one_or_none()


class RawTransaction:
    """A write transaction (``BEGIN IMMEDIATE``) on this thread's connection: ``execute`` takes
    the same Core statements and parameters as a SQLAlchemy ``Connection``."""

    def __init__(self, reader: RowReader, connection: Any) -> None:
        self._reader = reader
        self._connection = connection

    @property
    def dialect(self) -> Dialect:
        return self._reader.engine.dialect

    def execute(self, statement: Executable, parameters: Mapping[str, Any] | None = None) -> Rows:
        return Rows(*self._reader.run(self._connection, statement, parameters or {}))


class RowReader:
    """Compiled statements and per-thread connections of one engine."""

    def __init__(self, engine: Engine, *, enabled: bool) -> None:
        self.engine = engine
        self.enabled = enabled and engine.dialect.positional
        self._compiled: dict[Any, _Compiled] = {}
        self._local = threading.local()
        self._errors: type[Exception] = getattr(engine.dialect.loaded_dbapi, "Error", Exception)

    def first(self, statement: Executable, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The statement's first row, its values converted as SQLAlchemy would, or None."""
        rows, _ = self.run(self._connection(), statement, params, first=True)
        return rows[0] if rows else None

    def run(
        self, connection: Any, statement: Executable, params: Mapping[str, Any], first: bool = False
    ) -> tuple[list[tuple[Any, ...]], int]:
        """The statement's rows (only the first, with ``first``), converted, and its rowcount."""
        compiled = self.compiled(statement, params)
        arguments = compiled.arguments(params)
        with self.translated(compiled.sql, arguments):
            cursor = connection.execute(compiled.sql, arguments)
            try:
                if cursor.description is None:  # no rows: an INSERT, UPDATE or DELETE
                    raw = []
                elif first:
                    one = cursor.fetchone()
                    raw = [] if one is None else [one]
                else:
                    raw = cursor.fetchall()
                rowcount = cursor.rowcount
            finally:
                cursor.close()
        return [compiled.row_of(row) for row in raw], rowcount

    @contextmanager
    def transaction(self) -> Iterator[RawTransaction]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` on this thread's connection, rolled back if the
        block raises. The caller queues the writers (``Database.write``)."""
        connection = self._connection()
        with self.translated("BEGIN IMMEDIATE", []):
            connection.execute("BEGIN IMMEDIATE")
        try:
            yield RawTransaction(self, connection)
            with self.translated("COMMIT", []):
                connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise

    @contextmanager
    def translated(self, sql: str, arguments: list[Any]) -> Iterator[None]:
        """The driver's errors as SQLAlchemy's (``IntegrityError``, ``OperationalError``)."""
        try:
            yield
        except self._errors as error:
            raise DBAPIError.instance(sql, arguments, error, self._errors) from error

    def compiled(self, statement: Executable, params: Mapping[str, Any]) -> _Compiled:
        """The statement compiled once (an INSERT once per set of columns given)."""
        key = (statement, tuple(params)) if getattr(statement, "is_insert", False) else statement
        entry = self._compiled.get(key)
        if entry is None:
            entry = self._compiled[key] = self._compile(statement, list(params))
        return entry

    def _compile(self, statement: Executable, keys: list[str]) -> _Compiled:
        dialect = self.engine.dialect
        compiled = statement.compile(dialect=dialect, column_keys=keys)  # type: ignore[attr-defined]
        if "POSTCOMPILE" in compiled.string:  # an expanding IN: its SQL depends on the values
            raise ValueError("RowReader cannot run an expanding IN; write it as OR terms")
        if compiled.insert_prefetch or compiled.update_prefetch:  # Python-side defaults
            raise ValueError("RowReader needs every column with a Python default given")
        binds: dict[str, Processor] = {}
        for name in compiled.positiontup or ():
            processor = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                binds[name] = processor
        fixed = {  # the values of binds the caller need not give
            name: value if value is None or name not in binds else binds[name](value)
            for name, value in compiled.params.items()
            if name in compiled.binds and not compiled.binds[name].required
        }
        columns = list(getattr(statement, "exported_columns", ()))
        processors = (
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        )
        converted = tuple((i, p) for i, p in enumerate(processors) if p is not None)
        names = [column.key or "" for column in columns]
        row = namedtuple("Row", names, rename=True)  # type: ignore[misc]
        order = tuple(compiled.positiontup or ())
        return _Compiled(compiled.string, order, fixed, binds, converted, row)

    def _connection(self) -> Any:
        """This thread's DBAPI connection, in autocommit (each statement outside
        :meth:`transaction` is its own read transaction). Taken from the engine once (so it
        was set up by its connect listeners) and detached from the pool: however many threads
        hold one, the pool's slots stay free for the others (a forked child takes its own)."""
        held = getattr(self._local, "held", None)
        if held is None or held[0] != os.getpid():
            pooled = self.engine.raw_connection()
            connection = pooled.driver_connection
            pooled.detach()
            held = self._local.held = (os.getpid(), connection)
        return held[1]
