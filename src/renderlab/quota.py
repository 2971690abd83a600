"""The per-user render quota: one named limit built from :class:`~renderlab.limits.Limits`."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy.orm import Session

from renderlab.clock import Clock, now_ms
from renderlab.limits import Limits
from renderlab.ratelimit import FixedWindow, RateLimiter

RENDER_QUOTA = "renders"


def make_quota(limits: Limits, clock: Clock = now_ms) -> RateLimiter:
    """A fixed window of ``renders_per_hour`` per ``rate_window_ms``, per user, with a random
    phase per user as Convex's component gives one (windows of all users do not open at once).
    """
    window = FixedWindow(rate=limits.renders_per_hour, period_ms=limits.rate_window_ms)
    return RateLimiter({RENDER_QUOTA: window}, clock=clock)


@dataclass(frozen=True)
class QuotaStatus:
    """What ``GET /v1/quota`` reports: nothing here consumes quota."""

    limit: int
    remaining: int
    retry_after_ms: int | None
    resets_at_ms: int | None


def quota_status(session: Session, quota: RateLimiter, user_id: str) -> QuotaStatus:
    config = quota.configs[RENDER_QUOTA]
    limit = int(config.rate)
    result = quota.check(session, RENDER_QUOTA, user_id, count=0)
    remaining = max(0, math.floor(result.value))
    next_one = quota.check(session, RENDER_QUOTA, user_id, count=1)
    retry_after = None if next_one.ok else math.ceil(next_one.retry_after or 0)
    resets_at = None
    if remaining < limit and result.window_start is not None:
        resets_at = result.window_start + config.period_ms
    return QuotaStatus(limit, remaining, retry_after, resets_at)
