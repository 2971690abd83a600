"""``POST /v1/stills``: one frame of props that are not stored, for the web page's live preview.

``GET /v1/generations/{id}/still`` needs a stored generation; a preview that follows the form as
the user types would store one per keystroke and fill their history. This route takes the props
in the body instead, validates them exactly as ``POST /v1/generations`` does (same 422 field
names: ``animation_props.text``, ...), checks the same caps, stores nothing and uses no quota.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from renderlab import caps
from renderlab.api.auth import Principal
from renderlab.api.context import ApiContext
from renderlab.api.errors import ApiError, invalid
from renderlab.api.routes import PNG_200, route
from renderlab.api.schemas import RequestBody
from renderlab.api.stills_guard import still_slot
from renderlab.compositions import TextAnimationProps
from renderlab.pipeline.start import requested_size


class StillCreate(RequestBody):
    animation_props: TextAnimationProps
    frame: int = Field(0, ge=0, description="0 .. duration_in_frames - 1")
    width: int | None = Field(None, description="Even, within the size cap; default 1920.")
    height: int | None = Field(None, description="Even, within the size cap; default 1080.")


async def still_png(
    ctx: ApiContext,
    user_id: str,
    props: TextAnimationProps,
    frame: int,
    width: int | None,
    height: int | None,
    location: str,
) -> bytes:
    """Frame ``frame`` of ``props`` as PNG, after the checks every still route makes (a 422
    naming the field at ``location``: ``body`` or ``query``), within the user's still quota and
    the process's bound on stills drawn at once (``still_slot``). Drawing takes tens of
    milliseconds: it runs on Starlette's thread pool, not the database's."""
    limits = ctx.limits
    width, height = requested_size(props, width, height, limits)
    if frame >= props.duration_in_frames:
        message = f"frame must be within 0..{props.duration_in_frames - 1} for this animation."
        raise invalid("frame", location, message)
    try:
        caps.check_render_size(width, height, props.width, props.height, limits)
    except caps.CapError as exc:
        field = {"field": exc.field, "location": location, "message": exc.message}
        raise ApiError(422, exc.code, exc.message, fields=[field]) from None
    from renderlab.render import render_still  # the renderer loads on first use

    async with still_slot(ctx, user_id):
        return await run_in_threadpool(render_still, props, frame, width, height)


def router(ctx: ApiContext) -> APIRouter:
    limits = ctx.limits
    Me = Annotated[Principal, Depends(ctx.current_principal)]
    api = APIRouter(tags=["stills"])

    summary = "One frame of unsaved props as PNG (a preview: stores nothing, costs no quota)"

    @route(api.post, "/v1/stills", summary, 413, 429, responses=PNG_200, response_class=Response)
    async def create_still(body: StillCreate, me: Me) -> Response:
        props = body.animation_props
        caps.check_duration(props.duration_in_frames, props.fps, limits)  # CapError: a 422
        png = await still_png(ctx, me.user_id, props, body.frame, body.width, body.height, "body")
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    return api
