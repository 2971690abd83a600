"""The HTTP edges every request crosses: body size limit, security headers, CORS.

All are plain ASGI middleware rather than Starlette's ``BaseHTTPMiddleware``, which would
buffer streaming responses (Server-Sent Events must flow) and cost a task per request.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "frame-ancestors 'none'"),
    ("Referrer-Policy", "no-referrer"),
)
EXPOSED_HEADERS = ("Retry-After", "RateLimit", "RateLimit-Policy", "Location")
ALLOWED_REQUEST_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID")


_SECURITY_RAW = tuple((name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS)


def with_security_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` plus nosniff and "never frame me", where the response did not set its own.

    A response with its own Content-Security-Policy keeps it, with ``frame-ancestors 'none'``
    appended when it says nothing about framing.
    """
    present = {name.lower(): index for index, (name, _) in enumerate(headers)}
    for name, value in _SECURITY_RAW:
        index = present.get(name)
        if index is None:
            headers.append((name, value))
        elif name == b"content-security-policy" and b"frame-ancestors" not in headers[index][1]:
            headers[index] = (name, headers[index][1].rstrip(b"; ") + b"; " + value)
    return headers


class BodyLimitMiddleware:
    """Refuses request bodies over ``max_bytes`` with 413 ``payload_too_large``.

    A declared Content-Length over the limit is refused before anything is read. Otherwise the
    body is read (at most ``max_bytes`` of it, also when it arrives chunked with no length) and
    handed on in one piece, so no route ever sees more than the limit, whatever the client
    declared.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: bytes | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if declared is None and not chunked:
            await self.app(scope, receive, send)  # no body (a GET)
            return
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._too_large(send)
            return

        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._too_large(send)
                return
            parts.append(body)
            if not message.get("more_body", False):
                break

        body = b"".join(parts)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # afterwards: http.disconnect, for streaming responses

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        payload = json.dumps(
            {
                "error": {
                    "code": "payload_too_large",
                    "message": f"Request body is larger than {self.max_bytes} bytes.",
                }
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),  # the rest of the body is not read
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def install_middleware(
    app: FastAPI, *, max_body_bytes: int, cors_origins: Sequence[str], http_metrics: bool
) -> None:
    """Innermost first: body limit, then CORS (closed unless origins are configured), then the
    edge outermost (``observe.EdgeMiddleware``: request id, security headers, no-store,
    metrics), so every response, 413s and CORS refusals included, has them."""
    from renderlab.api.observe import EdgeMiddleware

    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=list(ALLOWED_REQUEST_HEADERS),
            expose_headers=list(EXPOSED_HEADERS),
            allow_credentials=False,
        )
    app.add_middleware(EdgeMiddleware, http_metrics=http_metrics)
