"""Metered still previews: a token bucket per user, and a bound on stills drawn at once.

A still costs no quota, but a heavy 1080p frame is tens to hundreds of milliseconds of CPU and
tens of megabytes of frame buffers in the API process. Measured before this guard
(``bench/stills.py``, issue 15): 40 concurrent heavy stills from one user took another user's
``GET /v1/quota`` from 5 ms to a median of 0.87 s and the API process to 1.3 GB.

* ``RENDERLAB_STILLS_PER_MINUTE`` (60) per user, in the project's own limiter
  (:mod:`renderlab.ratelimit`, a token bucket whose capacity is one minute's worth, so a
  burst of a minute's stills is allowed and then one per ``60/N`` s); over it, 429
  ``rate_limited`` with ``Retry-After``.
* ``RENDERLAB_STILLS_AT_ONCE`` (the core count) stills drawn at once per API process; the
  others wait their turn on the event loop, where waiting costs neither CPU nor frame buffers.

Routes wrap only the drawing, after validating the request, so a refused or invalid request
costs no token: ``async with still_slot(ctx, me.user_id): png = await ...``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from renderlab import metrics
from renderlab.api.context import ApiContext
from renderlab.api.errors import ApiError
from renderlab.ratelimit import RateLimiter, RateLimitResult, TokenBucket

STILLS = "stills"
MINUTE_MS = 60_000


class StillGuard:
    """One per app: the limiter and this process's drawing slots."""

    def __init__(self, ctx: ApiContext) -> None:
        limits = ctx.limits
        per_minute = limits.stills_per_minute
        bucket = TokenBucket(rate=per_minute, period_ms=MINUTE_MS, capacity=per_minute)
        self.ctx = ctx
        self.limiter = RateLimiter({STILLS: bucket}, clock=ctx.services.clock)
        self.slots = asyncio.Semaphore(limits.stills_at_once)

    def take(self, user_id: str) -> RateLimitResult:
        with self.ctx.services.db.transaction() as session:
            return self.limiter.limit(session, STILLS, user_id)

    @asynccontextmanager
    async def slot(self, user_id: str) -> AsyncIterator[None]:
        result = await self.ctx.call(self.take, user_id)
        if not result.ok:
            metrics.still("rate_limited")
            raise _rate_limited(result, self.ctx.limits.stills_per_minute)
        async with self.slots:
            try:
                yield
            except Exception:
                metrics.still("failed")
                raise
        metrics.still("ok")


def guard_of(ctx: ApiContext) -> StillGuard:
    """The app's guard, made on first use (both still routes share it, and so its slots)."""
    guard = ctx.__dict__.get("_still_guard")
    if guard is None:
        guard = ctx.__dict__.setdefault("_still_guard", StillGuard(ctx))
    return guard


def still_slot(ctx: ApiContext, user_id: str):  # type: ignore[no-untyped-def]
    """``async with still_slot(ctx, user_id):`` around drawing one still."""
    return guard_of(ctx).slot(user_id)


def _rate_limited(result: RateLimitResult, per_minute: int) -> ApiError:
    retry_after_ms = math.ceil(result.retry_after or 0)
    return ApiError(
        429,
        "rate_limited",
        f"Too many still previews: at most {per_minute} a minute. "
        f"Try again in {max(1, math.ceil(retry_after_ms / 1000))} s.",
        headers={"Retry-After": str(max(1, math.ceil(retry_after_ms / 1000)))},
        retry_after_ms=retry_after_ms,
        limit=per_minute,
    )
