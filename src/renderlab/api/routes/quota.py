"""``GET /v1/quota``: what is left of my render quota, without spending any of it."""

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from renderlab.api.auth import Principal
from renderlab.api.context import ApiContext
from renderlab.api.ratelimit_headers import status_headers
from renderlab.api.routes import QUOTA_HEADERS, json_response, route
from renderlab.api.schemas import QuotaOut
from renderlab.clock import ms_to_rfc3339
from renderlab.quota import QuotaStatus, quota_status
from renderlab.services import Services


def router(ctx: ApiContext) -> APIRouter:
    services = ctx.services
    Me = Annotated[Principal, Depends(ctx.current_principal)]
    api = APIRouter(tags=["quota"])

    summary = "My render quota (reading it consumes nothing)"
    quota_headers = {200: {"headers": QUOTA_HEADERS}}

    @route(api.get, "/v1/quota", summary, responses=quota_headers, response_model=QuotaOut)
    async def get_quota(me: Me) -> Response:
        status = await ctx.call(_status, services, me.user_id)
        out = QuotaOut(
            limit=status.limit,
            remaining=status.remaining,
            retry_after_ms=status.retry_after_ms,
            resets_at=ms_to_rfc3339(status.resets_at_ms),
        )
        return json_response(out, headers=status_headers(services.limits, status, services.clock()))

    return api


def _status(services: Services, user_id: str) -> QuotaStatus:
    with services.db.session() as session:
        return quota_status(session, services.quota, user_id)
