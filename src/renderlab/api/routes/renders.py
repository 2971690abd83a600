"""``/v1/renders``: start, list, read, watch live, cancel, and get a download URL."""

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from renderlab import store
from renderlab.api.auth import Principal
from renderlab.api.context import ApiContext
from renderlab.api.errors import ApiError, field_error, invalid
from renderlab.api.ratelimit_headers import policy_header
from renderlab.api.routes import (
    NO_STORE,
    POLICY_HEADER,
    PageQuery,
    assemble,
    json_response,
    paging,
    route,
)
from renderlab.api.schemas import (
    DownloadURLOut,
    DownloadURLRequest,
    RenderCreate,
    RenderOut,
    RenderPage,
    WebhookDeliveryOut,
    WebhookDeliveryPage,
)
from renderlab.clock import ms_to_rfc3339
from renderlab.db import Database
from renderlab.events import Subscription
from renderlab.pipeline.start import RenderRequest, start_render
from renderlab.store import RenderSnapshot
from renderlab.webhooks import InvalidWebhookURL
from renderlab.webhooks.outbox import deliveries_of

SSE_HEADERS = {
    "Cache-Control": "no-store",  # the events carry signed URLs
    "X-Accel-Buffering": "no",  # nginx: pass each event on as it comes
}
KEEPALIVE = b": keepalive\n\n"
# One event of the stream (OpenAPI 3.1: a text/event-stream ``schema`` describes each event).
SSE_EVENT_SCHEMA = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"const": "render"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": "#/components/schemas/RenderOut"},
        },
    },
}


def router(ctx: ApiContext) -> APIRouter:
    """The ``/v1/renders`` routes; their numbers come from the app's own limits."""
    parts = (_add_start_and_reads, _add_stream_and_actions, _add_webhook_deliveries)
    return assemble(ctx, *parts, prefix="/v1/renders", tags=["renders"])


def _add_webhook_deliveries(api: APIRouter, ctx: ApiContext) -> None:
    Me = Annotated[Principal, Depends(ctx.current_principal)]

    summary = "Every delivery attempt of the render's webhooks, newest first"

    @route(api.get, "/{id}/webhook-deliveries", summary, 404, response_model=WebhookDeliveryPage)
    async def webhook_deliveries(id: str, me: Me) -> Response:
        return await ctx.call(_deliveries, ctx, me, id)


def _add_start_and_reads(api: APIRouter, ctx: ApiContext) -> None:
    limits = ctx.limits
    Me = Annotated[Principal, Depends(ctx.current_principal)]
    Paging = paging(limits)

    started = {
        202: {
            "description": "The new render (or, for a replayed Idempotency-Key, the first).",
            "headers": {"Location": {"schema": {"type": "string"}}, **POLICY_HEADER},
        }
    }

    @route(
        api.post,
        "",
        "Start a render (uses one quota slot)",
        *(404, 413, 429),
        responses=started,
        status_code=202,
        response_model=RenderOut,
    )
    async def create_render(
        body: RenderCreate,
        request: Request,
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                min_length=1,
                max_length=limits.idempotency_key_max_chars,
                description="Replaying the same key and body within 24 h returns the first "
                "render and uses no more quota; the same key with another body is a 422.",
            ),
        ] = None,
    ) -> Response:
        me = await ctx.current_principal(request)  # not a dependency: see get_render
        if body.webhook_url is None:  # else the URL's host is resolved: not on the loop
            return await ctx.write(_create, ctx, me, body, idempotency_key)
        return await ctx.call(_create, ctx, me, body, idempotency_key)

    summary = "My renders, newest first; or the newest render of one generation"

    @route(api.get, "", summary, response_model=RenderPage)
    async def list_renders(
        me: Me,
        page: Paging,  # type: ignore[valid-type]
        generation_id: Annotated[
            str | None,
            Query(description="Only the newest render of this generation, as a one-item list."),
        ] = None,
    ) -> Response:
        return await ctx.call(_list, ctx, me, generation_id, page)


def _add_stream_and_actions(api: APIRouter, ctx: ApiContext) -> None:
    limits, db = ctx.limits, ctx.services.db
    Me = Annotated[Principal, Depends(ctx.current_principal)]

    @route(api.get, "/{id}", "One render", 404, response_model=RenderOut)
    async def get_render(id: str, request: Request) -> Response:
        # The caller is found here rather than through ``Me``: FastAPI's solving of a
        # dependency costs about 13 us of the ~150 us this route spends in Python (profiled
        # in-process), and these two routes are the API's hottest. The bearer scheme and the
        # 401 are in the OpenAPI document all the same (``route``).
        me = await ctx.current_principal(request)
        render = await ctx.read(_read, db, me.user_id, id)
        return json_response(_out(ctx, render, me))

    stream_200 = {
        200: {
            "description": "`event: render` with the render object as `data`, now and "
            "after every change; the stream ends after a terminal status. A comment line "
            "every 15 s keeps idle connections open.",
            "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}},
        }
    }

    @route(
        api.get,
        "/{id}/events",
        "Live progress (Server-Sent Events)",
        404,
        responses=stream_200,
        response_class=StreamingResponse,
    )
    async def render_events(id: str, me: Me) -> StreamingResponse:
        first = await ctx.read(_read, db, me.user_id, id)
        stream = _events(ctx, first, me.token_identifier, limits.sse_keepalive_s)
        return StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)

    summary = "A fresh signed URL for a complete render, inline or as an attachment"

    @route(api.post, "/{id}/download-url", summary, 404, 409, 410, response_model=DownloadURLOut)
    async def download_url(id: str, me: Me, body: DownloadURLRequest | None = None) -> Response:
        return await ctx.call(_download_url, ctx, me, id, body or DownloadURLRequest())

    summary = "Delete a render: cancel it if it runs, remove its output and poster"

    @route(api.delete, "/{id}", summary, 404, status_code=204, response_class=Response)
    async def delete_render(id: str, me: Me) -> Response:
        return await ctx.call(_delete, ctx, me, id)

    summary = "Cancel a pending or rendering render (it becomes failed)"

    @route(api.post, "/{id}/cancel", summary, 404, 409, response_model=RenderOut)
    async def cancel_render(id: str, me: Me) -> Response:
        return await ctx.call(_cancel, ctx, me, id)


# Blocking work, run on the API's database threads (``ctx.call``).


def _read(db: Database, user_id: str, render_id: str) -> RenderSnapshot:
    """The user's render, on the database's fastest read path: the API's hottest read."""
    return store.get(db, render_id, user_id=user_id)


def _create(
    ctx: ApiContext,
    me: Principal,
    body: RenderCreate,
    idempotency_key: str | None,
    *,
    wait: bool = True,
) -> Response:
    services = ctx.services
    request = _request_of(body)
    try:
        render, created = start_render(
            services, me.user_id, request, idempotency_key=idempotency_key, wait=wait
        )
    except InvalidWebhookURL as exc:
        message = f"webhook_url is not allowed: {exc.reason}."
        fields = [field_error("webhook_url", "body", message)]
        raise ApiError(422, "invalid_webhook_url", message, fields=fields) from None
    headers = {"Location": f"/v1/renders/{render.id}", **policy_header(services.limits)}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return json_response(_out(ctx, render, me), 202, headers)


def _request_of(body: RenderCreate) -> RenderRequest:
    """The pipeline's request from the body; exactly one of ``generation_id`` and
    ``animation_props`` (a 422 naming the field otherwise)."""
    if (body.generation_id is None) == (body.animation_props is None):
        message = "Send exactly one of generation_id (a stored generation) and animation_props."
        raise invalid("generation_id", "body", message)
    if body.prompt is not None and body.animation_props is None:
        raise invalid("prompt", "body", "prompt goes with animation_props, not generation_id.")
    props = body.animation_props
    return RenderRequest(
        generation_id=body.generation_id,
        animation_props=None if props is None else props.model_dump(mode="json"),
        prompt=body.prompt,
        width=body.width,
        height=body.height,
        codec=body.codec,
        poster_frame=body.poster_frame,
        webhook_url=body.webhook_url,
        metadata=body.metadata,
    )


def _deliveries(ctx: ApiContext, me: Principal, render_id: str) -> Response:
    with ctx.services.db.session() as session:
        store.get(session, render_id, user_id=me.user_id)  # the owner's, else 404
        rows = deliveries_of(session, render_id)
    items = [
        WebhookDeliveryOut.model_construct(**{**row, "at": ms_to_rfc3339(row["at"])})
        for row in rows
    ]
    return json_response(WebhookDeliveryPage.model_construct(items=items))


def _list(ctx: ApiContext, me: Principal, generation_id: str | None, query: PageQuery) -> Response:
    with ctx.services.db.session() as session:
        if generation_id is not None:
            newest = store.newest_of_generation(session, me.user_id, generation_id)
            rows: list[Any] = [] if newest is None else [newest]
            next_cursor = None
        else:
            page = store.list_by_user(session, me.user_id, limit=query.limit, cursor=query.cursor)
            rows, next_cursor = list(page.items), page.next_cursor
        items = [_out(ctx, render, me) for render in rows]
    return json_response(RenderPage.model_construct(items=items, next_cursor=next_cursor))


def _download_url(
    ctx: ApiContext, me: Principal, render_id: str, body: DownloadURLRequest
) -> Response:
    from renderlab.pipeline import actions, retention

    retention.check_downloadable(ctx.services, me.user_id, render_id)  # 410 once it is gone
    try:
        signed = actions.download_url(
            ctx.services,
            me.user_id,
            render_id,
            disposition=body.disposition,
            filename=body.filename,
        )
    except actions.RenderNotComplete as exc:
        raise ApiError(409, "render_not_complete", _message(exc, "not complete")) from None
    # As every other time in the API: milliseconds, UTC ("...T19:52:56.000Z").
    expires_at = signed.expires_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json_response(DownloadURLOut(url=signed.url, expires_at=expires_at))


def _delete(ctx: ApiContext, me: Principal, render_id: str) -> Response:
    from renderlab.pipeline.delete import delete_render

    delete_render(ctx.services, me.user_id, render_id)
    return Response(status_code=204, headers=NO_STORE)


def _cancel(ctx: ApiContext, me: Principal, render_id: str) -> Response:
    from renderlab.pipeline import lifecycle

    try:
        render = lifecycle.cancel(ctx.services, me.user_id, render_id)
    except lifecycle.RenderFinished as exc:
        raise ApiError(409, "render_finished", _message(exc, "already finished")) from None
    return json_response(_out(ctx, render, me))


def _out(ctx: ApiContext, render: Any, me: Principal) -> RenderOut:
    """The render object with a freshly signed ``output_url`` (see ``ApiContext.output_url``)."""
    return RenderOut.of(render, me.token_identifier, ctx.urls(render))


def _message(exc: Exception, what: str) -> str:
    return str(exc) or f"The render is {what}."


def _event(ctx: ApiContext, snapshot: RenderSnapshot, token_identifier: str) -> bytes:
    """One SSE event, its ``output_url`` signed at send time (a stream opened long after the
    render completed still hands out a working link)."""
    data = RenderOut.of(snapshot, token_identifier, ctx.urls(snapshot)).model_dump_json()
    return f"event: render\ndata: {data}\n\n".encode()


async def _events(
    ctx: ApiContext, first: RenderSnapshot, token_identifier: str, keepalive_s: float
) -> AsyncIterator[bytes]:
    """The render now, then after every visible change, until it is complete or failed.

    The subscription is taken inside the generator so that it lives exactly as long as the
    stream: Starlette cancels the generator when the client goes away, and ``with`` lets go.
    """
    subscription: Subscription
    with ctx.feed.subscribe(first.id) as subscription:
        yield _event(ctx, first, token_identifier)
        last = first
        while not last.is_terminal:
            snapshot = await subscription.next(keepalive_s)
            if snapshot is None:
                yield KEEPALIVE
            elif snapshot.updated_at >= last.updated_at and snapshot.visible() != last.visible():
                # (An older snapshot can arrive when a new stream is handed the feed's last
                # state after reading a newer one itself: never step back.)
                last = snapshot
                yield _event(ctx, snapshot, token_identifier)
