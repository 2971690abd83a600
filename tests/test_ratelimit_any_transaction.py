"""The limiter's guarantee holds in whatever transaction the caller gives it, not only in
``Database.transaction``: 50 threads, each in a plain SQLAlchemy session of its own (a plain
engine with none of renderlab's connection hooks, and renderlab's engine with a deferred
BEGIN), consume a 5-per-hour limit at once; exactly 5 are admitted, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from renderlab.db import Database
from renderlab.ratelimit import FixedWindow, RateLimiter

THREADS = 50
HOUR = 3_600_000


def plain_engine(database_url: str) -> Engine:
    """An engine as any SQLAlchemy user makes one (pysqlite's own transaction handling)."""
    if database_url.startswith("sqlite"):
        return create_engine(database_url, poolclass=NullPool, connect_args={"timeout": 60})
    return create_engine(database_url, poolclass=NullPool)


def admitted(engine: Engine) -> list[str]:
    """Outcomes of 50 simultaneous consumers, each in its own plain session."""
    limiter = RateLimiter({"renders": FixedWindow(rate=5, period_ms=HOUR, start=0)})
    barrier = threading.Barrier(THREADS)
    outcomes: list[str] = []
    lock = threading.Lock()

    def consume() -> None:
        barrier.wait()
        try:
            with Session(engine) as session, session.begin():
                outcome = "ok" if limiter.limit(session, "renders", "alice").ok else "denied"
        except Exception as exc:  # a refused transaction is not an admission
            outcome = f"error: {type(exc).__name__}"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=consume) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return outcomes


ENGINES: dict[str, Callable[[str], Engine]] = {
    "plain": plain_engine,
    "renderlab-deferred": lambda url: Database(url, null_pool=True).engine,
}


@pytest.mark.parametrize("make_engine", ENGINES.values(), ids=ENGINES.keys())
def test_fifty_plain_sessions_admit_exactly_five(
    database_url: str, make_engine: Callable[[str], Engine]
) -> None:
    engine = make_engine(database_url)
    try:
        outcomes = admitted(engine)
    finally:
        engine.dispose()
    assert len(outcomes) == THREADS
    assert outcomes.count("ok") == 5, outcomes
    assert outcomes.count("denied") == THREADS - 5, outcomes
