"""The quota limiter: Convex rate-limiter semantics, in the caller's transaction, on both DBs."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from renderlab.db import Database
from renderlab.models import RateLimitState
from renderlab.ratelimit import FixedWindow, RateLimiter, TokenBucket, calculate
from tests.conftest import FakeClock

HOUR = 3_600_000


def limiter(clock: FakeClock, **configs: FixedWindow | TokenBucket) -> RateLimiter:
    return RateLimiter(configs, clock=clock)


def consume(db: Database, rl: RateLimiter, name: str = "r", key: str = "u", **kw):
    with db.transaction() as session:
        return rl.limit(session, name, key, **kw)


def test_fixed_window_exact_values(db: Database) -> None:
    clock = FakeClock(0)
    rl = limiter(clock, r=FixedWindow(rate=5, period_ms=HOUR, start=0))
    assert [consume(db, rl).ok for _ in range(5)] == [True] * 5
    sixth = consume(db, rl)
    assert (sixth.ok, sixth.retry_after) == (False, 3_600_000)
    clock.now = 3_599_999
    late = consume(db, rl)
    assert (late.ok, late.retry_after) == (False, 1)
    clock.now = 3_600_000
    assert consume(db, rl).ok


def test_denied_call_writes_nothing(db: Database) -> None:
    clock = FakeClock(0)
    rl = limiter(clock, r=FixedWindow(rate=2, period_ms=1000, start=0))
    consume(db, rl), consume(db, rl)
    with db.session() as session:
        before = session.execute(select(RateLimitState.value, RateLimitState.ts)).one()
    assert not consume(db, rl).ok
    with db.session() as session:
        assert session.execute(select(RateLimitState.value, RateLimitState.ts)).one() == before


def test_fixed_window_random_phase_per_key(db: Database) -> None:
    clock = FakeClock(10 * HOUR)
    rl = limiter(clock, r=FixedWindow(rate=1, period_ms=HOUR))
    phases = set()
    for key in ("a", "b", "c", "d"):
        assert consume(db, rl, key=key).ok
        denied = consume(db, rl, key=key)
        assert not denied.ok
        assert 0 < denied.retry_after <= HOUR
        with db.session() as session:
            query = select(RateLimitState.ts).where(RateLimitState.key == key)
            ts = session.execute(query).scalar()
        assert clock.now - HOUR < ts <= clock.now
        phases.add(ts % HOUR)
    assert len(phases) > 1, "every key got the same phase"


def test_fixed_window_capacity_accumulates_over_windows(db: Database) -> None:
    clock = FakeClock(0)
    rl = limiter(clock, r=FixedWindow(rate=2, period_ms=1000, capacity=5, start=0))
    for _ in range(5):
        assert consume(db, rl).ok
    clock.now = 2500  # two windows passed: +4 tokens
    assert [consume(db, rl).ok for _ in range(5)] == [True] * 4 + [False]


def test_token_bucket_refills_continuously(db: Database) -> None:
    clock = FakeClock(1_000)
    rl = limiter(clock, r=TokenBucket(rate=10, period_ms=60_000))
    for _ in range(10):
        assert consume(db, rl).ok
    denied = consume(db, rl)
    assert not denied.ok
    assert denied.retry_after == pytest.approx(6_000)  # one token every 6 s
    clock.advance(3_000)
    half = consume(db, rl)
    assert (half.ok, half.retry_after) == (False, pytest.approx(3_000))
    clock.advance(3_000)
    assert consume(db, rl).ok


def test_token_bucket_capacity_caps_refill(db: Database) -> None:
    clock = FakeClock(0)
    rl = limiter(clock, r=TokenBucket(rate=1, period_ms=1000, capacity=3))
    for _ in range(3):
        assert consume(db, rl).ok
    clock.advance(100_000)
    assert [consume(db, rl).ok for _ in range(4)] == [True, True, True, False]


def test_count_and_count_above_capacity(db: Database) -> None:
    clock = FakeClock(0)
    rl = limiter(clock, r=TokenBucket(rate=10, period_ms=1000))
    assert consume(db, rl, count=7).ok
    assert not consume(db, rl, count=4).ok
    assert consume(db, rl, count=3).ok
    with pytest.raises(ValueError, match="exceeds 10"):
        consume(db, rl, count=11)


def test_reserve_takes_future_capacity_and_reports_when(db: Database) -> None:
    clock = FakeClock(0)
    rl = limiter(clock, r=TokenBucket(rate=10, period_ms=1000, max_reserved=5))
    assert consume(db, rl, count=10).ok
    reserved = consume(db, rl, count=4, reserve=True)
    assert reserved.ok and reserved.retry_after == pytest.approx(400)
    too_far = consume(db, rl, count=2, reserve=True)  # would reserve 6 > 5
    assert not too_far.ok and too_far.retry_after == pytest.approx(600)
    with pytest.raises(ValueError):
        consume(db, rl, count=16, reserve=True)


def test_check_never_writes(db: Database) -> None:
    clock = FakeClock(0)
    rl = limiter(clock, r=FixedWindow(rate=1, period_ms=1000, start=0))
    with db.session() as session:
        assert rl.check(session, "r", "u").ok
    with db.transaction() as session:
        assert rl.check(session, "r", "u").ok
        assert session.execute(select(func.count()).select_from(RateLimitState)).scalar() == 0
    assert consume(db, rl).ok
    with db.session() as session:
        result = rl.check(session, "r", "u")
    assert (result.ok, result.retry_after) == (False, 1000)


def test_reset_restores_full_capacity(db: Database) -> None:
    clock = FakeClock(0)
    rl = limiter(clock, r=FixedWindow(rate=1, period_ms=HOUR, start=0))
    assert consume(db, rl).ok
    assert not consume(db, rl).ok
    with db.transaction() as session:
        rl.reset(session, "r", "u")
    assert consume(db, rl).ok


def test_rolled_back_transaction_costs_nothing(db: Database) -> None:
    clock = FakeClock(0)
    rl = limiter(clock, r=FixedWindow(rate=1, period_ms=HOUR, start=0))
    with pytest.raises(RuntimeError), db.transaction() as session:
        assert rl.limit(session, "r", "u").ok
        raise RuntimeError("the insert after the quota failed")
    assert consume(db, rl).ok


def test_refund_only_within_the_consuming_window(db: Database) -> None:
    clock = FakeClock(0)
    rl = limiter(clock, r=FixedWindow(rate=1, period_ms=1000, start=0))
    assert consume(db, rl).ok
    with db.transaction() as session:
        assert rl.refund(session, "r", "u", consumed_at=0)
    assert consume(db, rl).ok
    clock.now = 1500
    assert consume(db, rl).ok
    with db.transaction() as session:
        assert not rl.refund(session, "r", "u", consumed_at=500)
        assert rl.refund(session, "r", "u", consumed_at=1200)
    with db.transaction() as session:  # never above capacity
        assert rl.refund(session, "r", "u", consumed_at=1200)
    assert [consume(db, rl).ok for _ in range(2)] == [True, False]


def test_unknown_limit_and_bad_configs() -> None:
    rl = RateLimiter({"r": TokenBucket(rate=1, period_ms=1000)})
    with pytest.raises(ValueError, match="unknown rate limit"):
        rl._config("nope", 1, False)
    with pytest.raises(ValueError):
        RateLimiter({"bad": FixedWindow(rate=0, period_ms=1000)})


def test_calculate_matches_component_formulas() -> None:
    window = FixedWindow(rate=3, period_ms=100, start=50)
    # A fresh key at full capacity, count 4 -> deficit 1 -> one window after this window's start.
    computed = calculate(None, window, now=260, count=4)
    assert computed.ts == 250 and computed.value == -1
    assert computed.retry_after == 250 + 100 * 1 - 260
    bucket = TokenBucket(rate=4, period_ms=1000)
    computed = calculate((0.0, 0), bucket, now=100, count=1)
    assert computed.value == pytest.approx(-0.6)
    assert computed.retry_after == pytest.approx(0.6 / (4 / 1000))
