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
from renderlab.api.errors import invalid
from renderlab.api.routes import AUTHED, errors
from renderlab.api.schemas import RequestBody
from renderlab.api.stills_guard import still_slot
from renderlab.compositions import TextAnimationProps


class StillCreate(RequestBody):
    animation_props: TextAnimationProps
    frame: int = Field(0, ge=0, description="0 .. duration_in_frames - 1")
    width: int | None = Field(None, description="Even, within the size cap; default 1920.")
    height: int | None = Field(None, description="Even, within the size cap; default 1080.")


def router(ctx: ApiContext) -> APIRouter:
    limits = ctx.limits
    Me = Annotated[Principal, Depends(ctx.current_principal)]
    api = APIRouter(tags=["stills"])

    @api.post(
        "/v1/stills",
        response_class=Response,
        responses={
            200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
            **errors(*AUTHED, 413, 429),
        },
        summary="One frame of unsaved props as PNG (a preview: stores nothing, costs no quota)",
    )
    async def create_still(body: StillCreate, me: Me) -> Response:
        props = body.animation_props
        size = caps.default_size(limits)
        width = size.width if body.width is None else body.width
        height = size.height if body.height is None else body.height
        caps.check_duration(props.duration_in_frames, props.fps, limits)  # CapError: a 422
        caps.check_size(width, height, limits)
        if body.frame >= props.duration_in_frames:
            raise invalid(
                "frame",
                "body",
                f"frame must be within 0..{props.duration_in_frames - 1} for this animation.",
            )
        from renderlab.render import render_still  # the renderer loads on first use

        async with still_slot(ctx, me.user_id):
            png = await run_in_threadpool(render_still, props, body.frame, width, height)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    return api
