"""The IETF rate-limit headers (draft-ietf-httpapi-ratelimit-headers) for the render quota.

``RateLimit-Policy: "renders";q=5;w=3600`` states the quota (5 per 3600 s window) and
``RateLimit: "renders";r=2;t=1200`` what is left of it and in how many seconds the window
resets. Clients that know the draft can pace themselves without asking ``GET /v1/quota``.
"""

from __future__ import annotations

import math

from renderlab.limits import Limits
from renderlab.quota import RENDER_QUOTA, QuotaStatus


def policy_header(limits: Limits) -> dict[str, str]:
    """The quota itself: costs nothing to send, so ``POST /v1/renders`` always sends it."""
    window_s = max(1, math.ceil(limits.rate_window_ms / 1000))
    return {"RateLimit-Policy": f'"{RENDER_QUOTA}";q={limits.renders_per_hour};w={window_s}'}


def quota_headers(limits: Limits, *, remaining: int, reset_s: int) -> dict[str, str]:
    return {
        **policy_header(limits),
        "RateLimit": f'"{RENDER_QUOTA}";r={max(0, remaining)};t={max(0, reset_s)}',
    }


def status_headers(limits: Limits, status: QuotaStatus, now_ms: int) -> dict[str, str]:
    """Headers for a quota status read at ``now_ms`` (a full quota resets "now": t=0)."""
    reset_ms = 0 if status.resets_at_ms is None else max(0, status.resets_at_ms - now_ms)
    return quota_headers(limits, remaining=status.remaining, reset_s=math.ceil(reset_ms / 1000))
