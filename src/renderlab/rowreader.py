"""One-row reads of the API's hot paths, without SQLAlchemy's per-statement machinery.

A render read by its id is one indexed SQLite lookup of about 15 us; through a pooled
SQLAlchemy connection and a compiled Core statement it cost 230 us here (checkout, reset on
return, execution context, result object), and on a database thread as much again in the hop
and the GIL handed back and forth. :class:`RowReader` compiles each statement once for the
engine's dialect, keeps one DBAPI connection per thread (SQLite needs no round trip, so the
API runs these reads on its event loop), and converts the row with the same result processors
SQLAlchemy applies (JSON columns, booleans), so a row reads the same either way.

File-backed SQLite only: :attr:`RowReader.enabled` is false for PostgreSQL (a read is a network
round trip, and its connections belong to the pool) and in-memory SQLite (every connection is
its own database); :class:`renderlab.db.Database` then runs the statement on a pooled
connection, as before.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Select


@dataclass(frozen=True)
class _Compiled:
    sql: str
    order: tuple[str, ...]  # the parameters' names in positional order
    fixed: dict[str, Any]  # values the statement carries itself (a LIMIT's)
    converted: tuple[tuple[int, Callable[[Any], Any]], ...]  # (column, its result processor)


class RowReader:
    """Compiled statements and per-thread connections of one engine."""

    def __init__(self, engine: Engine, *, enabled: bool) -> None:
        self.engine = engine
        self.enabled = enabled and engine.dialect.positional
        self._compiled: dict[Select[Any], _Compiled] = {}
        self._local = threading.local()

    def first(self, statement: Select[Any], params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The statement's first row, its values converted as SQLAlchemy would, or None."""
        compiled = self._compiled.get(statement) or self._compile(statement)
        given = {**compiled.fixed, **params}
        cursor = self._connection().execute(compiled.sql, [given[n] for n in compiled.order])
        try:
            row = cursor.fetchone()
        finally:
            cursor.close()
        if row is None or not compiled.converted:
            return None if row is None else tuple(row)
        values = list(row)
        for index, convert in compiled.converted:
            if values[index] is not None:
                values[index] = convert(values[index])
        return tuple(values)

    def _compile(self, statement: Select[Any]) -> _Compiled:
        dialect = self.engine.dialect
        compiled = statement.compile(dialect=dialect)
        processors = (
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.selected_columns
        )
        converted = tuple((i, p) for i, p in enumerate(processors) if p is not None)
        fixed = {name: value for name, value in compiled.params.items() if value is not None}
        entry = _Compiled(compiled.string, tuple(compiled.positiontup or ()), fixed, converted)
        self._compiled[statement] = entry
        return entry

    def _connection(self) -> Any:
        """This thread's DBAPI connection: checked out of the pool once and kept (a forked
        child takes its own), in autocommit, so each statement is its own read transaction."""
        held = getattr(self._local, "held", None)
        if held is None or held[0] != os.getpid():
            pooled = self.engine.raw_connection()
            held = self._local.held = (os.getpid(), pooled)
        return held[1].driver_connection
