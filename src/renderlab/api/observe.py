"""What operators see of each request: its id, its metrics, and no caching of secrets.

:class:`EdgeMiddleware`, one pure ASGI layer (Server-Sent Events must flow unbuffered):

* every response has an ``X-Request-ID``: the client's when it is a sane value (1-128
  characters of ``A-Z a-z 0-9 . _ : - + / = @``), else a new one, bound to the request's log
  lines (:func:`renderlab.logs.bind`);
* each request is counted by route *template* (``/v1/renders/{id}``, ``unmatched`` for a path
  no route knows) with its latency;
* every ``/v1`` JSON or event stream response that does not say otherwise (or only says
  ``no-cache``) is sent with ``Cache-Control: no-store``: render objects and download-URL
  answers carry signed URLs, the sign-in answer a token, and a shared cache must never keep
  one. Responses with their own policy (still PNGs) keep it. This is the one place that rule
  lives.
"""

from __future__ import annotations

import os
import random
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from renderlab import logs, metrics
from renderlab.api.middleware import with_security_headers

REQUEST_ID_HEADER = b"x-request-id"
_SANE_ID = re.compile(rb"[A-Za-z0-9._:\-+/=@]{1,128}")
UNMATCHED = "unmatched"
_ids = random.Random()
"""Request ids without a system call: ``uuid.uuid4`` reads ``os.urandom``, which drops the GIL,
and the event loop then waits for a database thread to hand it back (py-spy: 11 % of the loop's
busy time on a render read under wrk)."""
if hasattr(os, "register_at_fork"):  # forked API processes must not repeat each other's ids
    os.register_at_fork(after_in_child=_ids.seed)


def request_id_of(scope: Scope) -> str:
    """The client's ``X-Request-ID`` if it is sane, else a new random one."""
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER and _SANE_ID.fullmatch(value):
            return value.decode("ascii")
    return f"{_ids.getrandbits(128):032x}"


class EdgeMiddleware:
    """What every HTTP response gets, in one layer (five of them cost about 85 us of a
    render read): its ``X-Request-ID`` (bound to the request's log lines), the security
    headers (:func:`~renderlab.api.middleware.with_security_headers`), ``no-store`` on ``/v1``
    (:func:`no_store`), and, with ``http_metrics``, its count and latency by route template."""

    def __init__(self, app: ASGIApp, *, http_metrics: bool) -> None:
        self.app = app
        self.http_metrics = http_metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        raw_id = request_id.encode("ascii")
        api = scope["path"].startswith("/v1/")
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def send_with_edges(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = with_security_headers(list(message.get("headers", [])))
                if api:
                    headers = no_store(headers)
                headers = [h for h in headers if h[0] != REQUEST_ID_HEADER]
                message["headers"] = [*headers, (REQUEST_ID_HEADER, raw_id)]
            await send(message)

        # Set for the rest of the request's task, not reset on the way out: the error handler
        # of last resort runs outside every middleware and still logs with it.
        logs.set_context(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_edges)
        finally:
            if self.http_metrics:
                elapsed = time.perf_counter() - started
                metrics.http_request(route_template(scope), scope["method"], status, elapsed)


def route_template(scope: Scope) -> str:
    """The matched route's path template (Starlette leaves the route in the scope)."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


def no_store(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` with ``Cache-Control: no-store`` if the body is JSON or an event stream
    and the response set no cache policy stronger than ``no-cache``."""
    content_type = next((v for n, v in headers if n.lower() == b"content-type"), b"")
    if not content_type.startswith((b"application/json", b"text/event-stream")):
        return headers
    policies = [v for n, v in headers if n.lower() == b"cache-control"]
    if policies and any(v.strip().lower() != b"no-cache" for v in policies):
        return headers
    kept = [(n, v) for n, v in headers if n.lower() != b"cache-control"]
    return [*kept, (b"cache-control", b"no-store")]
