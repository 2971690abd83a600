"""What every route of one app shares, and the dependency that turns a bearer token into a user.

Routers are built by functions that take this context (``routes.renders.router(ctx)``), so a
route's numbers (page sizes, header lengths) come from the app's own :class:`Limits` and appear
as such in its OpenAPI document, and tests can run several apps side by side.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool

from renderlab import logs
from renderlab.api.auth import Authenticator, AuthError, Principal, UserDirectory
from renderlab.db import WriterBusy
from renderlab.events import RenderFeed
from renderlab.limits import Limits
from renderlab.models import Render
from renderlab.pipeline import actions
from renderlab.services import Services
from renderlab.store import RenderSnapshot

T = TypeVar("T")

BEARER = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    description="`renderlab token NAME` (zero-setup mode) or your identity provider's JWT.",
)
"""The security scheme every ``/v1`` route declares (as ``HTTPBearer`` in the document)."""
BEARER_REQUIREMENT: list[dict[str, list[str]]] = [{BEARER.scheme_name: []}]


def bearer_token(authorization: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (the scheme in any case), read as
    FastAPI's ``HTTPBearer`` reads it, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return token


@dataclass
class ApiContext:
    services: Services
    auth: Authenticator
    users: UserDirectory
    feed: RenderFeed
    executor: ThreadPoolExecutor

    async def call(self, fn: Callable[..., T], /, *args: Any) -> T:
        """Run blocking database work on the API's few database threads.

        Routes are ``async`` and hand only their database work to this small pool rather than
        running whole in Starlette's 40-thread pool: with one GIL, many threads mostly trade it
        back and forth. Measured on two cores (``bench/api.py``), reads went from ~560/s
        through the 40-thread pool to ~1,100/s through one thread.
        """
        loop = asyncio.get_running_loop()
        work = logs.carry(functools.partial(fn, *args))  # its log lines keep the request id
        return await loop.run_in_executor(self.executor, work)

    async def read(self, fn: Callable[..., T], /, *args: Any) -> T:
        """:meth:`call` for a read of one indexed row through ``Database.first``: on SQLite it
        runs here, on the event loop, since the statement (~15 us) costs less than the hop to
        a thread and back (``bench/wrk.py``: with ``rowreader``, the render read went from 0.058x
        to 0.134x of a bare route); on PostgreSQL it is a round trip, and goes to the database
        threads."""
        if self.services.db.reads_inline:
            return fn(*args)
        return await self.call(fn, *args)

    async def write(self, fn: Callable[..., T], /, *args: Any) -> T:
        """:meth:`call` for a short write transaction (starting a render): on file-backed
        SQLite it is first tried here, on the event loop, with ``wait=False`` passed to ``fn``,
        which raises :class:`~renderlab.db.WriterBusy` before doing anything when another
        writer (a worker, a database thread) holds the database; then it goes to the database
        threads. A start is about 250 us of CPU, held under the GIL either way: inline, it
        saves the hop to a thread and back, and the GIL handed over twice."""
        if self.services.db.reads_inline:
            try:
                return fn(*args, wait=False)
            except WriterBusy:
                pass
        return await self.call(fn, *args)

    @property
    def limits(self) -> Limits:
        return self.services.limits

    def urls(self, render: Render | RenderSnapshot) -> actions.RenderURLs:
        """The render's download and poster URLs, signed now (REST and SSE alike): nothing
        stored is handed out, since a signed URL expires after ``limits.download_url_ttl_s``.
        (Only a process with no storage to sign with shows the legacy stored column.)"""
        if self.services.storage_factory is None:
            return actions.RenderURLs(render.output_url)
        return actions.signed_urls(self.services, render)

    async def current_principal(self, request: Request) -> Principal:
        """The caller, or 401. Verifying a local HS256 token is a few microseconds and runs on
        the event loop; fetching JWKS keys or creating a user row runs in a thread.

        The header is read here rather than through a ``Depends(HTTPBearer)`` of its own: each
        level of dependencies FastAPI solves costs about 25 us of every request (a quarter of
        a render read's time went to solving them). The scheme is still in the OpenAPI
        document (``routes.route`` and ``docs.install_docs``)."""
        token = bearer_token(request.headers.get("authorization"))
        if token is None:
            raise AuthError("Send a bearer token: 'Authorization: Bearer <JWT>'.", error="")
        if len(token) > self.limits.max_token_chars:
            raise AuthError("The bearer token is too large to be one we accept.")
        identity = self.auth.remembered(token)
        if identity is None and self.auth.verify_blocks:
            identity = await run_in_threadpool(self.auth.verify, token)
        elif identity is None:
            identity = self.auth.verify(token)
        user_id = self.users.cached(identity.token_identifier)
        if user_id is None:
            user_id = await self.call(self.users.resolve, identity)
        logs.set_context(user_id=user_id)
        return Principal(user_id=user_id, token_identifier=identity.token_identifier)
