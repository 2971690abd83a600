"""A transactional rate limiter in our own database, with the semantics of Convex's
``@convex-dev/rate-limiter`` (0.4): fixed windows and token buckets, ``limit`` / ``check`` /
``reset``, reservations, and ``retry_after`` in milliseconds computed as the component does.

State lives in the ``rate_limits`` table and is read and written inside the caller's SQLAlchemy
session, so consuming quota commits or rolls back with whatever else the caller writes (a render
row): a failed insert costs the user nothing.

The guarantee does not depend on how the caller opened that transaction. The state is read
under a lock the limiter takes itself: ``SELECT ... FOR UPDATE`` on PostgreSQL, and on SQLite
an ``UPDATE ... RETURNING`` that writes the row unchanged, which makes the transaction a writer
before it reads (a plain pysqlite session would otherwise read outside any transaction, and a
deferred ``BEGIN`` would read a snapshot another writer may already have changed). The new
state is then written with a compare-and-set on the values read, and read again when another
writer got there first. A transaction that cannot take the lock (SQLite: one that read an older
snapshot before calling the limiter) fails with the database's error instead of admitting
anyone: nothing is spent twice in any transaction.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Executable, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from renderlab.clock import Clock, now_ms
from renderlab.db import Executor
from renderlab.models import RateLimitState


@dataclass(frozen=True)
class FixedWindow:
    """``rate`` tokens are added at the start of each window (``start + k * period_ms``), up to
    ``capacity``. With ``start=None`` each key gets a random phase, so windows of many users do
    not all open at the same instant."""

    rate: float
    period_ms: int
    capacity: float | None = None
    start: int | None = None
    max_reserved: float | None = None


@dataclass(frozen=True)
class TokenBucket:
    """Tokens refill continuously at ``rate`` per ``period_ms``, up to ``capacity``."""

    rate: float
    period_ms: int
    capacity: float | None = None
    max_reserved: float | None = None


LimitConfig = FixedWindow | TokenBucket
Transaction = Session | Executor
"""The caller's transaction: an ORM session, or a Core connection inside ``begin()`` (an
:class:`~renderlab.db.Executor`: SQLAlchemy's, or on SQLite ``Database.write``'s faster one)."""


def _connection(transaction: Transaction) -> Executor:
    # Core statements on the session's own connection: nothing for the ORM to keep in sync.
    return transaction.connection() if isinstance(transaction, Session) else transaction


@dataclass(frozen=True)
class RateLimitResult:
    """``ok`` and, when not ok (or ok on a reservation), ``retry_after`` in milliseconds.

    ``value`` is what is left after this call (negative while capacity is reserved) and
    ``window_start`` the start of the current window (fixed windows only).
    """

    ok: bool
    retry_after: float | None
    value: float
    window_start: int | None = None


@dataclass(frozen=True)
class _Computed:
    value: float
    ts: int
    retry_after: float | None
    window_start: int | None


def _capacity(config: LimitConfig) -> float:
    return config.capacity if config.capacity is not None else config.rate


def _initial_ts(config: LimitConfig, now: int) -> int:
    if isinstance(config, TokenBucket):
        return now
    if config.start is not None:
        return config.start
    return math.floor(random.random() * config.period_ms)


def calculate(
    state: tuple[float, int] | None, config: LimitConfig, now: int, count: float
) -> _Computed:
    """The component's ``calculateRateLimit``: pure, so it can be tested on its own."""
    maximum = _capacity(config)
    value, ts = state if state is not None else (maximum, _initial_ts(config, now))
    if isinstance(config, TokenBucket):
        per_ms = config.rate / config.period_ms
        new_value = min(value + (now - ts) * per_ms, maximum) - count
        retry = -new_value / per_ms if new_value < 0 else None
        return _Computed(new_value, now, retry, None)
    windows = (now - ts) // config.period_ms
    new_ts = ts + windows * config.period_ms
    new_value = min(value + config.rate * windows, maximum) - count
    retry = None
    if new_value < 0:
        retry = new_ts + config.period_ms * math.ceil(-new_value / config.rate) - now
    return _Computed(new_value, new_ts, retry, ts)


class RateLimiter:
    """Named limits over per-key state in the database."""

    def __init__(self, configs: Mapping[str, LimitConfig], clock: Clock = now_ms) -> None:
        for name, config in configs.items():
            if config.rate <= 0 or config.period_ms <= 0 or _capacity(config) <= 0:
                raise ValueError(f"rate limit {name!r}: rate, period and capacity must be > 0")
        self.configs = dict(configs)
        self.clock = clock

    def limit(
        self, tx: Transaction, name: str, key: str = "", count: float = 1, reserve: bool = False
    ) -> RateLimitResult:
        """Consume ``count`` if allowed (or, with ``reserve``, take it from the future).

        Writes only when the result is ok. Call it inside a write transaction.
        """
        config = self._config(name, count, reserve)
        while True:
            state = self._read(tx, name, key, lock=True)
            computed = calculate(state, config, self.clock(), count)
            result = self._judge(computed, config, reserve)
            if not result.ok or self._write(tx, name, key, computed, read=state):
                return result
            # A concurrent request created or changed the key's row: read it again, locked.

    def check(
        self, tx: Transaction, name: str, key: str = "", count: float = 1, reserve: bool = False
    ) -> RateLimitResult:
        """What :meth:`limit` would answer now, without writing anything."""
        config = self._config(name, count, reserve)
        computed = calculate(self._read(tx, name, key), config, self.clock(), count)
        return self._judge(computed, config, reserve)

    def reset(self, tx: Transaction, name: str, key: str = "") -> None:
        """Forget the key's state: it starts again at full capacity."""
        self._config(name, 0, False)
        _connection(tx).execute(
            delete(RateLimitState).where(_THIS_KEY), {"k_name": name, "k_key": key}
        )

    def refund(
        self,
        tx: Transaction,
        name: str,
        key: str = "",
        count: float = 1,
        consumed_at: int | None = None,
    ) -> bool:
        """Give back ``count`` consumed at ``consumed_at`` (ms), when that is still in force.

        A fixed window only takes back what was spent in the current window (an older window's
        tokens have already been replaced). Not part of the Convex API: renderlab returns the
        slot of a render that failed through its own fault or was cancelled.
        """
        config = self._config(name, 0, False)
        state = self._read(tx, name, key, lock=True)
        if state is None:
            return False
        current = calculate(state, config, self.clock(), 0)
        if (
            isinstance(config, FixedWindow)
            and consumed_at is not None
            and not current.ts <= consumed_at < current.ts + config.period_ms
        ):
            return False
        refunded = _Computed(min(current.value + count, _capacity(config)), current.ts, None, None)
        if not self._write(tx, name, key, refunded, read=state):
            return self.refund(tx, name, key, count, consumed_at)
        return True

    def _config(self, name: str, count: float, reserve: bool) -> LimitConfig:
        try:
            config = self.configs[name]
        except KeyError:
            raise ValueError(f"unknown rate limit {name!r}") from None
        if count < 0:
            raise ValueError(f"rate limit {name}: count must not be negative")
        maximum = _capacity(config)
        if reserve:
            if config.max_reserved is not None and count > maximum + config.max_reserved:
                raise ValueError(
                    f"Rate limit {name} count {count} exceeds {maximum + config.max_reserved}."
                )
        elif count > maximum:
            raise ValueError(f"Rate limit {name} count {count} exceeds {maximum}.")
        return config

    @staticmethod
    def _judge(computed: _Computed, config: LimitConfig, reserve: bool) -> RateLimitResult:
        denied = computed.value < 0 and (
            not reserve
            or (config.max_reserved is not None and -computed.value > config.max_reserved)
        )
        return RateLimitResult(
            ok=not denied,
            retry_after=computed.retry_after,
            value=computed.value,
            window_start=computed.ts if isinstance(config, FixedWindow) else None,
        )

    @staticmethod
    def _read(
        tx: Transaction, name: str, key: str, *, lock: bool = False
    ) -> tuple[float, int] | None:
        """The key's state; ``lock`` holds its row until the transaction ends (PostgreSQL
        ``FOR UPDATE``; on SQLite a no-op write, which takes the database's write lock)."""
        connection = _connection(tx)
        statement: Executable = _READ
        if lock:
            statement = _LOCK_SQLITE if connection.dialect.name == "sqlite" else _LOCK
        state = connection.execute(statement, {"k_name": name, "k_key": key}).first()
        return None if state is None else (state.value, state.ts)

    @staticmethod
    def _write(
        tx: Transaction,
        name: str,
        key: str,
        computed: _Computed,
        *,
        read: tuple[float, int] | None,
    ) -> bool:
        """Store the new state if the row still holds ``read`` (compare-and-set); False when a
        concurrent request changed or created the key's row first."""
        connection = _connection(tx)
        if read is not None:
            values = {"k_name": name, "k_key": key, "k_value": computed.value, "k_ts": computed.ts}
            changed = connection.execute(_UPDATE, {**values, "k_old": read[0], "k_old_ts": read[1]})
            return changed.rowcount == 1
        insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
        statement = insert(RateLimitState).on_conflict_do_nothing()
        values = {"name": name, "key": key, "value": computed.value, "ts": computed.ts}
        inserted = connection.execute(statement.returning(RateLimitState.name), values).first()
        return inserted is not None


# Built once: the limiter runs in every render start, and building a statement costs more
# than SQLite takes to run it.
_THIS_KEY = (RateLimitState.name == bindparam("k_name")) & (
    RateLimitState.key == bindparam("k_key")
)
_READ = select(RateLimitState.value, RateLimitState.ts).where(_THIS_KEY)
_LOCK = _READ.with_for_update()
_LOCK_SQLITE = (
    update(RateLimitState)
    .where(_THIS_KEY)
    .values(value=RateLimitState.value)
    .returning(RateLimitState.value, RateLimitState.ts)
)
_UPDATE = (
    update(RateLimitState)
    .where(
        _THIS_KEY
        & (RateLimitState.value == bindparam("k_old"))
        & (RateLimitState.ts == bindparam("k_old_ts"))
    )
    .values(value=bindparam("k_value"), ts=bindparam("k_ts"))
)
