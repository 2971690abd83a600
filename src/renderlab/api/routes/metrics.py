"""``GET /metrics``: the Prometheus text exposition (no token, like ``/healthz``).

Off with ``RENDERLAB_METRICS=false``: the route is then not registered at all and the path
answers 404 like any unknown one. The render queue is read from the database on each scrape
(on the API's database threads); the event counters come from :mod:`renderlab.metrics`.
"""

from fastapi import APIRouter, Response

from renderlab import metrics
from renderlab.api.context import ApiContext
from renderlab.db import Database


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(tags=["operations"])
    if not ctx.services.settings.metrics:
        return api
    db = ctx.services.db

    @api.get("/metrics", include_in_schema=False)
    async def scrape() -> Response:
        body = await ctx.call(_exposition, db)
        return Response(body, media_type=metrics.CONTENT_TYPE)

    return api


def _exposition(db: Database) -> bytes:
    with db.session() as session:
        state = metrics.database_gauges(session)
    return metrics.exposition(state)
