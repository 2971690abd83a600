"""``GET /healthz``: the process answers and its database does too (for load balancers), and
which identity mode it runs in, so a deployment left in ``dev`` shows on every dashboard."""

import logging

from fastapi import APIRouter
from sqlalchemy import text

from renderlab.api.context import ApiContext
from renderlab.api.errors import ApiError
from renderlab.api.routes import errors
from renderlab.api.schemas import HealthOut
from renderlab.db import Database

log = logging.getLogger("renderlab.api")


def router(ctx: ApiContext) -> APIRouter:
    db = ctx.services.db
    api = APIRouter(tags=["health"])

    @api.get("/healthz", response_model=HealthOut, responses=errors(503), summary="Liveness")
    async def healthz() -> HealthOut:
        try:
            await ctx.call(_ping, db)
        except Exception as exc:
            log.warning("health check: database unreachable: %s", exc)
            retry = {"Retry-After": str(ctx.limits.unavailable_retry_after_s)}
            raise ApiError(
                503, "unavailable", "The database is not reachable.", headers=retry
            ) from None
        return HealthOut(status="ok", database="ok", auth=ctx.auth.mode)

    return api


def _ping(db: Database) -> None:
    with db.session() as session:
        session.execute(text("SELECT 1"))
