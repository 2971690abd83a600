"""``create_app(services)``: the FastAPI application ``renderlab serve`` runs.

The app owns the process's render feed (one poller for all live-progress streams) and, when the
dispatcher is something that runs (the embedded worker pool), starts and stops it with the
app's lifespan, so ``serve`` has a single place where things begin and end.
"""

from __future__ import annotations

import gc
import importlib.util
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Protocol, runtime_checkable

from fastapi import FastAPI

from renderlab import logs
from renderlab.api.auth import Authenticator, UserDirectory
from renderlab.api.context import ApiContext
from renderlab.api.docs import install_docs
from renderlab.api.downloads import files_router
from renderlab.api.errors import EXCEPTION_HANDLERS
from renderlab.api.middleware import install_middleware
from renderlab.api.routes import (
    auth,
    compositions,
    fonts,
    generations,
    health,
    metrics,
    quota,
    renders,
    stills,
)
from renderlab.events import RenderFeed
from renderlab.services import Services
from renderlab.storage.local import LocalStorage

log = logging.getLogger("renderlab.api")

DESCRIPTION = """Render text animations to MP4 under a per-user quota, watch progress live,
download through expiring signed URLs. Every `/v1` route needs `Authorization: Bearer <JWT>`;
errors are `{"error": {"code", "message", ...}}`. See `docs/api.md`."""


@runtime_checkable
class Runnable(Protocol):
    """A dispatcher with a life of its own (the embedded worker pool)."""

    def start(self) -> None: ...

    def stop(self, timeout: float) -> None: ...


def create_app(services: Services, *, feed: RenderFeed | None = None) -> FastAPI:
    ctx = ApiContext(
        services=services,
        auth=Authenticator(services.settings, services.limits),
        users=UserDirectory(services.db, services.limits.auth_cache_size),
        feed=feed or RenderFeed(services.db, services.limits, services.clock),
        executor=ThreadPoolExecutor(
            services.limits.threads_for(services.db.dialect), thread_name_prefix="api-db"
        ),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        dispatcher = services.dispatcher
        runnable = dispatcher if isinstance(dispatcher, Runnable) else None
        if runnable is not None:
            runnable.start()
        try:
            yield
        finally:
            ctx.feed.stop()
            ctx.executor.shutdown(wait=False, cancel_futures=True)
            if runnable is not None:
                # Renders still running after the grace go back to pending and resume on the
                # next start (EmbeddedWorkers.stop): a Ctrl-C should not wait a minute.
                runnable.stop(services.limits.shutdown_grace_s)

    app = FastAPI(
        title="renderlab",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        redoc_url=None,
        docs_url=None,
        exception_handlers=EXCEPTION_HANDLERS,
    )
    install_docs(app)
    logs.redact_access_log()  # signed download links would otherwise be logged whole
    app.state.ctx = ctx
    install_middleware(
        app,
        max_body_bytes=services.limits.max_body_bytes,
        cors_origins=services.settings.cors_origins,
        http_metrics=services.settings.metrics,
    )
    # Matched in this order, one included router after another: the hottest routes first.
    hottest_first = (renders, generations, health, auth, stills, quota, compositions, fonts)
    for module in (*hottest_first, metrics):
        app.include_router(module.router(ctx))
    _mount_local_files(app, services)
    _include_web_page(app)
    return app


def freeze_startup_heap() -> None:
    """Move everything alive once the app is built (modules, models, routes, compiled
    statements: ~100,000 objects) out of the garbage collector's sight, as a server does just
    before it starts serving.

    Otherwise every full collection walks them all again, and a full collection comes every
    few thousand requests: measured with ``bench/api.py``, that was 20 pauses of up to 50 ms in
    ten seconds, the tail of every latency figure. Objects frozen here stay alive anyway; the
    collector still frees cycles made later.
    """
    gc.collect()
    gc.freeze()


def _mount_local_files(app: FastAPI, services: Services) -> None:
    """Signed downloads of the local storage backend are served by this same process."""
    if not services.settings.resolved_storage_url().startswith("file:"):
        return
    app.include_router(files_router(lambda: _local(services), services.clock))


def _local(services: Services) -> LocalStorage:
    storage = services.storage
    if not isinstance(storage, LocalStorage):
        raise RuntimeError("the /files route serves local storage only")
    return storage


def _include_web_page(app: FastAPI) -> None:
    if importlib.util.find_spec("renderlab.web") is None:
        return
    from renderlab import web

    router = getattr(web, "router", None)
    if router is not None:
        app.include_router(router)
