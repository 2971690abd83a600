"""Every failure leaves the API as ``{"error": {"code", "message", ...}}`` and nothing else.

Domain exceptions (store, caps, quota, idempotency, auth) are translated here, once, so routes
stay straight-line code. A database that cannot be reached, or whose disk is full, is a 503
``unavailable`` with ``Retry-After``: the request did nothing and may be sent again. Anything
unforeseen becomes a 500 ``internal_error`` whose body says nothing about the code: the
traceback goes to the log, never to the client.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Coroutine, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from renderlab import logs, metrics, store
from renderlab.api.auth import AuthError, IdentityProviderUnavailable
from renderlab.api.middleware import SECURITY_HEADERS
from renderlab.api.ratelimit_headers import quota_headers
from renderlab.caps import CapError
from renderlab.compositions.props import error_message as props_error_message
from renderlab.compositions.props import near_miss_first
from renderlab.limits import Limits
from renderlab.pipeline.retention import OutputExpired
from renderlab.pipeline.start import IdempotencyConflict, QuotaExceeded, TooManyConcurrentRenders
from renderlab.store.paging import InvalidCursor

log = logging.getLogger("renderlab.api")

STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal_error",
    501: "not_implemented",
    503: "unavailable",
}


class ApiError(Exception):
    """Raised by routes for a contract error that has no domain exception of its own."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.extra = extra


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    return JSONResponse(error_body(code, message, **extra), status_code=status, headers=headers)


def field_error(field: str, location: str, message: str) -> dict[str, str]:
    return {"field": field, "location": location, "message": message}


def invalid(field: str, location: str, message: str) -> ApiError:
    """A 422 ``invalid_request`` for one field, with the message as the error's message too."""
    return ApiError(422, "invalid_request", message, fields=[field_error(field, location, message)])


NOT_JSON = "The request body is not valid JSON."


def _validation_fields(errors: Sequence[Any], content_type: str) -> list[dict[str, str]]:
    fields = []
    for error in errors:
        kind = error.get("type")
        if kind == "json_invalid":
            # FastAPI's loc is ("body", <byte offset>): the contract names the body itself.
            fields.append(field_error("body", "body", _not_json(error)))
            continue
        location, *path = error.get("loc", ("body",))
        if location not in ("body", "query", "path", "header"):
            path, location = [location, *path], "body"
        name = ".".join(str(part) for part in path) or location
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        if path and path[0] == "animation_props":
            message = props_error_message({**error, "loc": path[1:]})
        if kind == "model_attributes_type" and location == "body" and not path:
            message = _not_an_object(error.get("input"), content_type)
        elif kind == "missing" and location == "body" and not path:
            message = f"{_NO_BODY}: send a JSON object with Content-Type: application/json."
        fields.append(field_error(name, location, message))
    return fields


def _not_json(error: Any) -> str:
    """NOT_JSON with where the parse stopped ("Expecting ',' delimiter at character 49")."""
    where = error.get("loc", ())[1:]
    why = (error.get("ctx") or {}).get("error")
    if not why or not where:
        return NOT_JSON
    return f"{NOT_JSON[:-1]}: {why} at character {where[0]}."


def _not_an_object(given: Any, content_type: str) -> str:
    """The body read as something other than a JSON object: usually JSON sent without its
    content type (curl -d sends application/x-www-form-urlencoded), which FastAPI does not
    parse at all; else a JSON array, string or number."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        sent = f"this request's was {media}" if media else "this request had none"
        return f"{_NOT_AN_OBJECT} sent with Content-Type: application/json; {sent}."
    return f"{_NOT_AN_OBJECT}, not {_json_kind(given)}."


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, list):
        return "an array"
    return "a string" if isinstance(value, str) else "a number"


_NOT_AN_OBJECT = "The body must be a JSON object"
_NO_BODY = "The request has no body"
# Messages about the body as a whole: the error's message is theirs alone, with no field named.
_WHOLE_BODY = (NOT_JSON[:-1], _NOT_AN_OBJECT, _NO_BODY)


async def api_error(request: Request, exc: ApiError) -> JSONResponse:
    return error_response(
        exc.status, exc.code, exc.message, headers=exc.headers or None, **exc.extra
    )


async def auth_error(request: Request, exc: AuthError) -> JSONResponse:
    challenge = f'Bearer error="{exc.error}"' if exc.error else "Bearer"
    return error_response(401, "unauthorized", exc.message, headers={"WWW-Authenticate": challenge})


async def idp_down(request: Request, exc: IdentityProviderUnavailable) -> JSONResponse:
    log.warning("identity provider unavailable: %s", exc)
    return error_response(
        503,
        "identity_provider_unavailable",
        "The identity provider's keys could not be fetched. Try again shortly.",
        headers=_retry_later(request),
    )


async def database_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
    # Handled here rather than by the catch-all below, which answers from outside every
    # middleware and then drops the connection: a client reusing it would get no answer.
    log.warning("database unavailable: %s", exc.orig)
    message = (
        "The server's disk is full: nothing new can be stored. Please try again later."
        if disk_full(exc)
        else "The database is not reachable. Please try again shortly."
    )
    return error_response(503, "unavailable", message, headers=_retry_later(request))


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 400:
        # FastAPI's "error parsing the body" (bytes that are not UTF-8 JSON): to the
        # contract that is an invalid body like any other, 422 naming the body.
        return error_response(
            422, "invalid_request", NOT_JSON, fields=[field_error("body", "body", NOT_JSON)]
        )
    code = STATUS_CODES.get(exc.status_code, "error")
    detail = exc.detail if isinstance(exc.detail, str) else None
    message = detail or HTTPStatus(exc.status_code).phrase
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
    return error_response(exc.status_code, code, message, headers=headers)


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of this path takes: Starlette's 405 names only the first route
    that matched the path (``/v1/renders`` has a GET route and a POST route). Asked of the
    routes themselves, method by method, so included routers answer for their own routes."""
    routes = request.app.router.routes
    return [
        method
        for method in METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    ]


async def request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    in_props = [e for e in errors if tuple(e.get("loc", ()))[1:2] == ("animation_props",)]
    errors = [*near_miss_first(in_props), *(e for e in errors if e not in in_props)]
    fields = _validation_fields(errors, request.headers.get("content-type", ""))
    first = fields[0] if fields else {"field": "body", "message": "invalid request"}
    message = (
        first["message"]
        if first["message"].startswith(_WHOLE_BODY)
        else f"Invalid request: {first['field']}: {first['message']}"
    )
    return error_response(422, "invalid_request", message, fields=fields)


async def cap_exceeded(request: Request, exc: CapError) -> JSONResponse:
    return error_response(
        422, exc.code, exc.message, fields=[field_error(exc.field, "body", exc.message)]
    )


async def quota_exceeded(request: Request, exc: QuotaExceeded) -> JSONResponse:
    metrics.quota_refused("rate_limited")
    retry_after_s = max(1, math.ceil(exc.retry_after_ms / 1000))
    headers = {
        "Retry-After": str(retry_after_s),
        **quota_headers(_limits(request), remaining=0, reset_s=retry_after_s),
    }
    return error_response(
        429,
        "rate_limited",
        exc.message,
        headers=headers,
        retry_after_ms=exc.retry_after_ms,
        limit=exc.limit,
    )


async def too_many_concurrent(request: Request, exc: TooManyConcurrentRenders) -> JSONResponse:
    metrics.quota_refused("too_many_concurrent_renders")
    return error_response(429, "too_many_concurrent_renders", exc.message, limit=exc.limit)


async def output_expired(request: Request, exc: OutputExpired) -> JSONResponse:
    return error_response(410, "output_expired", str(exc))


async def idempotency_reused(request: Request, exc: IdempotencyConflict) -> JSONResponse:
    message = str(exc)
    return error_response(
        422,
        "idempotency_key_reused",
        message,
        fields=[field_error("Idempotency-Key", "header", message)],
    )


async def render_not_found(request: Request, exc: store.NotFound) -> JSONResponse:
    return error_response(404, "not_found", _sentence(str(exc) or "not found"))


async def cursor_invalid(request: Request, exc: InvalidCursor) -> JSONResponse:
    message = str(exc)
    return error_response(
        422, "invalid_request", message, fields=[field_error("cursor", "query", message)]
    )


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    # Starlette sends this from its outermost middleware, outside ours: add the security
    # headers here so even a crash answers with them.
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        500,
        "internal_error",
        "Something went wrong on our side. Please try again.",
        # The server closes the connection after this answer: say so, so that clients
        # open a new one for their next request instead of writing into a closed socket.
        headers={**dict(SECURITY_HEADERS), "Connection": "close", **_request_id()},
    )


def _limits(request: Request) -> Limits:
    return request.app.state.ctx.limits  # type: ignore[no-any-return]


def _retry_later(request: Request) -> dict[str, str]:
    return {"Retry-After": str(_limits(request).unavailable_retry_after_s)}


ExceptionHandler = Callable[[Request, Any], Coroutine[Any, Any, Response]]
EXCEPTION_HANDLERS: dict[int | type[Exception], ExceptionHandler] = {
    ApiError: api_error,
    AuthError: auth_error,
    IdentityProviderUnavailable: idp_down,
    OperationalError: database_unavailable,
    StarletteHTTPException: http_error,
    RequestValidationError: request_invalid,
    CapError: cap_exceeded,
    QuotaExceeded: quota_exceeded,
    TooManyConcurrentRenders: too_many_concurrent,
    OutputExpired: output_expired,
    IdempotencyConflict: idempotency_reused,
    store.NotFound: render_not_found,
    InvalidCursor: cursor_invalid,
    Exception: internal_error,
}
"""Each error the app may raise and the function that answers it in the contract's shape:
``FastAPI(exception_handlers=EXCEPTION_HANDLERS)``."""


def _request_id() -> dict[str, str]:
    """This answer is sent from outside every middleware: give it the request's id here."""
    request_id = logs.current("request_id")
    return {"X-Request-ID": request_id} if request_id else {}


def disk_full(exc: OperationalError) -> bool:
    """SQLite's SQLITE_FULL, or PostgreSQL's disk_full (SQLSTATE 53100)."""
    orig = exc.orig
    return (
        getattr(orig, "sqlite_errorname", None) == "SQLITE_FULL"
        or getattr(orig, "sqlstate", None) == "53100"
    )


def _sentence(text: str) -> str:
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."
