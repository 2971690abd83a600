"""``GET /healthz``: the process answers and its database does too (for load balancers), and
which identity mode it runs in, so a deployment left in ``dev`` shows on every dashboard."""

import logging

from fastapi import APIRouter
from sqlalchemy import literal, select

from renderlab.api.context import ApiContext
from renderlab.api.errors import ApiError
from renderlab.api.routes import errors
from renderlab.api.schemas import HealthOut

log = logging.getLogger("renderlab.api")


def router(ctx: ApiContext) -> APIRouter:
    db = ctx.services.db
    api = APIRouter(tags=["health"])

    @api.get("/healthz", response_model=HealthOut, responses=errors(503), summary="Liveness")
    async def healthz() -> HealthOut:
        try:
            await ctx.read(db.first, _PING, {})
        except Exception as exc:
            log.warning("health check: database unreachable: %s", exc)
            retry = {"Retry-After": str(ctx.limits.unavailable_retry_after_s)}
            raise ApiError(
                503, "unavailable", "The database is not reachable.", headers=retry
            ) from None
        return HealthOut(status="ok", database="ok", auth=ctx.auth.mode)

    return api


_PING = select(literal(1))
"""One statement on the database's read path (``Database.first``): a session and a thread
for ``SELECT 1`` made this the slowest route of all under load."""
