"""One module per resource; each exposes ``router(ctx) -> APIRouter``, its routes declared
with :func:`route`.

(No ``from __future__ import annotations`` here: FastAPI must read :func:`paging`'s parameter
annotations as objects, and their bounds live in its closure, out of reach of a string.)
"""

import functools
import inspect
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.routing import Match, request_response
from starlette.types import ASGIApp, Receive, Scope, Send

from renderlab.api.context import BEARER_REQUIREMENT, ApiContext
from renderlab.api.schemas import ErrorResponse
from renderlab.limits import Limits

_DESCRIPTIONS = {
    401: "Missing, expired or invalid bearer token.",
    404: "No such object for this user (another user's objects answer the same).",
    409: "The render is not in a state that allows this.",
    410: "The render's output expired or was deleted: `output_expired`.",
    413: "Request body larger than the configured limit (64 KiB by default).",
    422: "Invalid request: `invalid_request` with `fields`, or a cap "
    "(`duration_too_long`, `resolution_too_large`, `invalid_resolution`).",
    429: "Render quota used up: `Retry-After`, `RateLimit` and `retry_after_ms`.",
    503: "A dependency (database, identity provider) is unavailable.",
}
AUTHED = (401, 422, 503)
NO_STORE = {"Cache-Control": "no-store"}

POLICY_HEADER = {
    "RateLimit-Policy": {
        "description": 'The render quota, e.g. `"renders";q=5;w=3600` (IETF rate-limit headers).',
        "schema": {"type": "string"},
    }
}
QUOTA_HEADERS = {
    **POLICY_HEADER,
    "RateLimit": {
        "description": 'What is left and when the window resets: `"renders";r=0;t=1200`.',
        "schema": {"type": "string"},
    },
}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}}},
    429: {
        "Retry-After": {
            "description": "Seconds until a render may be started again (rounded up).",
            "schema": {"type": "integer"},
        },
        **QUOTA_HEADERS,
    },
    503: {
        "Retry-After": {
            "description": "Seconds before trying again.",
            "schema": {"type": "integer"},
        }
    },
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for error statuses, all with the error body shape."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in sorted(set(statuses)):
        responses[status] = {"model": ErrorResponse, "description": _DESCRIPTIONS[status]}
        if status in _HEADERS:
            responses[status]["headers"] = _HEADERS[status]
    return responses


PNG_200: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}
}
"""The ``responses`` entry of a route that answers with a PNG image."""


class LeanRoute(APIRoute):
    """An ``APIRoute`` that calls its endpoint directly when FastAPI would have nothing to do
    but pass the path parameters on: an ``async`` endpoint of plain ``str`` path parameters
    and the ``Request``, no dependency, query, header, cookie or body, returning a
    ``Response``. The render and generation reads are such routes, and FastAPI 0.165's request
    handler (its body reading, dependency solving, telemetry records and error context, two
    exit stacks for dependencies with ``yield``) cost about 30 us of their ~140 us in Python.
    Any other endpoint gets FastAPI's own handler; the OpenAPI document is made from the same
    signature either way, and what the endpoint raises reaches the same exception handlers
    (Starlette's ``request_response``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self._lean_handler() or super().get_route_handler()

    @functools.cached_property
    def _lean_app(self) -> ASGIApp | None:
        """The lean endpoint as an ASGI app (decided once per route), or None."""
        handler = self._lean_handler()
        return None if handler is None else request_response(handler)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        lean = self._lean_app
        # Another method gets FastAPI's 405, with its Allow header.
        if lean is None or scope["method"] not in (self.methods or ()):
            await super().handle(scope, receive, send)
            return
        await lean(scope, receive, send)

    def _lean_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]] | None:
        endpoint, dependant = self.endpoint, self.dependant
        keyword = dependant.request_param_name
        if (
            keyword is None
            or not inspect.iscoroutinefunction(endpoint)
            or endpoint.__annotations__.get("return") not in (Response, "Response")
            or dependant.query_params
            or dependant.header_params
            or dependant.cookie_params
            or dependant.body_params
            or dependant.dependencies
            or dependant.http_connection_param_name
            or dependant.response_param_name
            or dependant.background_tasks_param_name
            or dependant.security_scopes_param_name
            or any(
                field.field_info.annotation is not str or field.field_info.metadata
                for field in dependant.path_params
            )
        ):
            return None
        name: str = keyword

        async def handler(request: Request) -> Response:
            response: Response = await endpoint(**request.path_params, **{name: request})
            return response

        return handler


class PrefixRouter(APIRouter):
    """An ``APIRouter`` that says "no match" at once to paths outside its prefix.

    FastAPI matches an included router by trying each of its routes in turn, with some scope
    bookkeeping for each (about 3 us): a generation read went through every render route
    first. A path outside the prefix cannot match any of them, so they are not tried."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if self.prefix:
            path, root = scope["path"], scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]  # as Starlette's own route matching sees it
            if path != self.prefix and not path.startswith(self.prefix + "/"):
                return Match.NONE, {}
        return super().matches(scope)


def assemble(
    ctx: ApiContext, *parts: Callable[[APIRouter, ApiContext], None], **options: Any
) -> APIRouter:
    """A router (``options``: its prefix and tags) with the routes each of ``parts`` adds,
    given the app's context: each part is a small function, not one long factory."""
    api = PrefixRouter(route_class=LeanRoute, **options)
    for add in parts:
        add(api, ctx)
    return api


def route(
    add: Callable[..., Any],
    path: str,
    summary: str,
    *statuses: int,
    responses: Mapping[Any, Any] | None = None,
    **options: Any,
) -> Any:
    """The decorator of one route behind the bearer token: ``add`` is the router's ``get``,
    ``post`` or ``delete``; the documented answers are ``responses`` (a success's headers or
    content), then the error shape for :data:`AUTHED` and ``statuses``. One call instead of a
    block of keywords repeated on every route."""
    documented = {**(responses or {}), **errors(*AUTHED, *statuses)}
    extra = {"security": BEARER_REQUIREMENT, **options.pop("openapi_extra", {})}
    return add(path, responses=documented, summary=summary, openapi_extra=extra, **options)


def json_response(
    model: BaseModel | bytes, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """Serialise with pydantic's own encoder, skipping FastAPI's re-validation of the value
    (the route built it from typed fields): it is the hot path of every read. ``bytes`` are
    a model's JSON serialised already (``GenerationOut.json_of``).

    ``Cache-Control: no-store``: these answers are one user's data and carry signed download
    URLs or tokens, which no shared or browser cache should keep."""
    body = model if isinstance(model, bytes) else model.__pydantic_serializer__.to_json(model)
    return Response(
        body,
        status_code=status_code,
        media_type="application/json",
        headers={**NO_STORE, **headers} if headers else NO_STORE,
    )


CURSOR_PATTERN = "^[A-Za-z0-9_-]+$"
"""What ``next_cursor`` looks like (unpadded URL-safe base64), said in the document only: a
cursor of another shape is refused by ``decode_cursor`` with its own message."""


@dataclass(frozen=True)
class PageQuery:
    limit: int
    cursor: str | None


def paging(limits: Limits) -> Any:
    """The ``limit`` and ``cursor`` query parameters every list route takes, as one annotated
    dependency type, bounded by the app's own page sizes."""

    def page_query(
        limit: Annotated[int, Query(ge=1, le=limits.page_size_max)] = limits.page_size_default,
        cursor: Annotated[
            str | None,
            Query(
                description="next_cursor of the previous page",
                json_schema_extra={"pattern": CURSOR_PATTERN},
            ),
        ] = None,
    ) -> PageQuery:
        return PageQuery(limit, cursor)

    return Annotated[PageQuery, Depends(page_query)]
