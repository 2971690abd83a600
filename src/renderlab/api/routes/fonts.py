"""``GET /v1/fonts``: the font families this server draws with, for the page's font picker.

The list is the renderer's own registry (the ``fontpkg-*`` packages it resolves first), each
family checked with :func:`renderlab.render.fonts.find_family`, so a name in the list is drawn
as itself and any other name falls back to Inter. Read once per process: installing a font
package needs a restart anyway.
"""

from functools import lru_cache

import fontpkg
from fastapi import APIRouter, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from renderlab.api.context import ApiContext
from renderlab.api.routes import json_response
from renderlab.render import fonts


class FontOut(BaseModel):
    family: str


class FontList(BaseModel):
    items: list[FontOut]


@lru_cache(maxsize=1)
def installed_families() -> tuple[str, ...]:
    """Installed families that resolve to a usable face, sorted by name."""
    names = {family.name for family in fontpkg.families().values()}
    return tuple(sorted(name for name in names if fonts.find_family(name) is not None))


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(tags=["fonts"])

    @api.get(
        "/v1/fonts",
        response_model=FontList,
        responses={},
        summary="Installed font families (other names are drawn in Inter)",
    )
    async def list_fonts() -> Response:
        families = await run_in_threadpool(installed_families)  # opens font files once
        return json_response(FontList(items=[FontOut(family=name) for name in families]))

    return api
