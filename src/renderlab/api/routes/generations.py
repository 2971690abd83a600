"""``/v1/generations``: store TextAnimation props, list and read them, preview one frame."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from renderlab import store
from renderlab.api.auth import Principal
from renderlab.api.context import ApiContext
from renderlab.api.routes import (
    NO_STORE,
    PNG_200,
    PageQuery,
    assemble,
    json_response,
    paging,
    route,
)
from renderlab.api.routes.stills import still_png
from renderlab.api.schemas import GenerationCreate, GenerationOut, GenerationPage, RenderOut
from renderlab.compositions import TextAnimationProps


def router(ctx: ApiContext) -> APIRouter:
    """The ``/v1/generations`` routes; their numbers come from the app's own limits."""
    parts = (_add_crud, _add_still, _add_delete)
    return assemble(ctx, *parts, prefix="/v1/generations", tags=["generations"])


def _add_crud(api: APIRouter, ctx: ApiContext) -> None:
    Me = Annotated[Principal, Depends(ctx.current_principal)]
    Paging = paging(ctx.limits)

    summary = "Store a TextAnimation"

    @route(api.post, "", summary, 413, status_code=201, response_model=GenerationOut)
    async def create_generation(body: GenerationCreate, me: Me) -> Response:
        return await ctx.call(_create, ctx, me, body)

    @route(api.get, "", "My generations, newest first", response_model=GenerationPage)
    async def list_generations(
        me: Me,
        page: Paging,  # type: ignore[valid-type]
    ) -> Response:
        return await ctx.call(_list, ctx, me, page)

    summary = "One generation, with its newest render"

    @route(api.get, "/{id}", summary, 404, response_model=GenerationOut)
    async def get_generation(id: str, request: Request) -> Response:
        me = await ctx.current_principal(request)  # not a dependency: see renders.get_render
        return await ctx.read(_get, ctx, me, id)


def _add_delete(api: APIRouter, ctx: ApiContext) -> None:
    Me = Annotated[Principal, Depends(ctx.current_principal)]

    summary = "Delete a generation and every render of it (outputs and posters too)"

    @route(api.delete, "/{id}", summary, 404, status_code=204, response_class=Response)
    async def delete_generation(id: str, me: Me) -> Response:
        return await ctx.call(_delete, ctx, me, id)


def _delete(ctx: ApiContext, me: Principal, generation_id: str) -> Response:
    from renderlab.pipeline.delete import delete_generation

    delete_generation(ctx.services, me.user_id, generation_id)
    return Response(status_code=204, headers=NO_STORE)


def _add_still(api: APIRouter, ctx: ApiContext) -> None:
    limits = ctx.limits
    Me = Annotated[Principal, Depends(ctx.current_principal)]

    summary = "One frame as PNG, rendered on demand (costs no quota)"

    @route(api.get, "/{id}/still", summary, 404, 429, responses=PNG_200, response_class=Response)
    async def get_still(
        id: str,
        me: Me,
        frame: Annotated[int, Query(ge=0, description="0 .. duration_in_frames - 1")] = 0,
        width: Annotated[int | None, Query(description="Even, within the size cap")] = None,
        height: Annotated[int | None, Query(description="Even, within the size cap")] = None,
    ) -> Response:
        props = await ctx.call(_props, ctx, me.user_id, id)
        png = await still_png(ctx, me.user_id, props, frame, width, height, "query")
        return Response(
            png,
            media_type="image/png",
            headers={"Cache-Control": f"private, max-age={limits.still_cache_max_age_s}"},
        )


# Blocking work, run on the API's database threads (``ctx.call``).


def _create(ctx: ApiContext, me: Principal, body: GenerationCreate) -> Response:
    with ctx.services.db.transaction() as session:
        generation = store.create_generation(
            session, me.user_id, body.animation_props, prompt=body.prompt
        )
    out = GenerationOut.of(generation, me.token_identifier, None)
    return json_response(out, 201, {"Location": f"/v1/generations/{generation.id}"})


def _list(ctx: ApiContext, me: Principal, query: PageQuery) -> Response:
    with ctx.services.db.session() as session:  # (rows expire when the read session ends)
        page = store.list_generations(session, me.user_id, limit=query.limit, cursor=query.cursor)
        latest = store.newest_by_generation(session, me.user_id, [g.id for g in page.items])
        items = [
            GenerationOut.of(g, me.token_identifier, _render_or_none(ctx, latest.get(g.id), me))
            for g in page.items
        ]
    return json_response(GenerationPage.model_construct(items=items, next_cursor=page.next_cursor))


def _get(ctx: ApiContext, me: Principal, generation_id: str) -> Response:
    generation, latest = store.get_with_newest_render(ctx.services.db, me.user_id, generation_id)
    out = _render_or_none(ctx, latest, me)
    return json_response(GenerationOut.json_of(generation, me.token_identifier, out))


def _render_or_none(ctx: ApiContext, render: Any, me: Principal) -> RenderOut | None:
    if render is None:
        return None
    return RenderOut.of(render, me.token_identifier, ctx.urls(render))


def _props(ctx: ApiContext, user_id: str, generation_id: str) -> TextAnimationProps:
    with ctx.services.db.session() as session:
        generation = store.get_generation(session, user_id, generation_id)
        return TextAnimationProps(**generation.animation_props)
