"""The app's own cost per request, without sockets: each route called as ASGI, in-process.

    .venv/bin/python bench/inprocess.py                 # the fastest of 5 rounds of 2,000 calls
    .venv/bin/python bench/inprocess.py --calls 10000 --rounds 10
    .venv/bin/python bench/inprocess.py --profile read  # cProfile of one route, by cumulative time
    py-spy record -o read.svg -- .venv/bin/python bench/inprocess.py --only read --calls 100000

What ``bench/api.py`` and ``bench/wrk.py`` measure is this plus uvicorn's HTTP work and the
socket; this takes those out, so a change to the app shows on its own, and the framework's floor
is measured beside it in the same run: a bare Starlette route and a bare FastAPI route with one
path parameter. The app is ``create_app`` on a fresh SQLite data dir with an HS256 secret, no
render workers (the renders stay pending), the quota and the concurrency cap raised.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import pstats
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

SECRET = "bench-secret-" + "x" * 40
PROPS = {"text": "Bench", "style": "fade-in", "color": "#FFFFFF", "duration_in_frames": 60}
END_PENDING_SQL = "UPDATE renders SET status = 'failed' WHERE status = 'pending'"
COMPLETE_SQL = (
    "UPDATE renders SET status = 'complete', progress = 100, completed_at = :now, "
    "output_key = 'renders/' || id || '/output.mp4', poster_key = 'renders/' || id || "
    "'/poster.png', output_size = 1000 WHERE id = :id"
)
App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


async def call(app: App, method: str, path: str, token: str = "", body: bytes = b"") -> tuple:
    """One request through ``app``: (status, body)."""
    headers = [(b"host", b"127.0.0.1")]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    if body:  # a GET says nothing of a body, as wrk and browsers send it
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:  # the app waits for a disconnect that never comes
            await asyncio.Event().wait()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def floors() -> tuple[App, App]:
    from fastapi import FastAPI
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def hello(_request: Request) -> JSONResponse:
        return JSONResponse({"hello": "world"})

    starlette = Starlette(routes=[Route("/", hello)])
    fastapi = FastAPI()

    @fastapi.get("/x/{id}")
    async def one(id: str) -> Response:
        return Response(b'{"hello":"world"}', media_type="application/json")

    return starlette, fastapi  # type: ignore[return-value]


async def measure(
    app: App,
    calls: int,
    expect: int,
    *request: Any,
    rounds: int = 1,
    between: Callable[[], None] = lambda: None,
) -> float:
    """Microseconds a call, after a warm-up: the fastest of ``rounds`` rounds of ``calls``
    (the least disturbed by whatever else the machine did); ``between`` runs before each."""
    for _ in range(min(300, calls)):
        await call(app, *request)
    best = float("inf")
    for _ in range(rounds):
        between()
        started = time.perf_counter()
        for _ in range(calls):
            status, payload = await call(app, *request)
            assert status == expect, (status, payload[:300])
        best = min(best, (time.perf_counter() - started) / calls * 1e6)
    return best


async def run(calls: int, rounds: int, profile: str | None, only: str | None) -> None:
    data = tempfile.mkdtemp(prefix="renderlab-inprocess-")
    os.environ.update(
        RENDERLAB_DATA_DIR=data,
        RENDERLAB_JWT_SECRET=SECRET,
        RENDERLAB_RENDERS_PER_HOUR="1000000",
        RENDERLAB_MAX_CONCURRENT_RENDERS="10000",
    )
    import jwt
    from sqlalchemy import text

    from renderlab.api import create_app
    from renderlab.config import Settings
    from renderlab.db import Database, upgrade
    from renderlab.limits import Limits
    from renderlab.services import Services

    settings = Settings()
    upgrade(settings.resolved_database_url())
    services = Services(
        settings=settings, limits=Limits(), db=Database(settings.resolved_database_url())
    )
    app = create_app(services)
    now = int(time.time())
    claims = {"iss": "renderlab", "sub": "bench", "iat": now, "exp": now + 3600}
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    async with app.router.lifespan_context(app):
        made = json.dumps({"animation_props": PROPS}).encode()
        status, payload = await call(app, "POST", "/v1/generations", token, made)
        assert status == 201, payload
        generation = json.loads(payload)["id"]
        start = json.dumps({"generation_id": generation}).encode()
        status, payload = await call(app, "POST", "/v1/renders", token, start)
        assert status == 202, payload
        render = json.loads(payload)["id"]
        status, payload = await call(app, "POST", "/v1/renders", token, start)
        complete = json.loads(payload)["id"]
        with services.db.transaction() as session:  # as a worker leaves it: two URLs to sign
            session.execute(text(COMPLETE_SQL), {"id": complete, "now": int(time.time() * 1000)})
        starlette, fastapi = floors()
        cases: dict[str, tuple[App, int, tuple[Any, ...]]] = {
            "bare Starlette route": (starlette, 200, ("GET", "/")),
            "bare FastAPI route, one path param": (fastapi, 200, ("GET", "/x/abc")),
            "GET /healthz": (app, 200, ("GET", "/healthz")),
            "read": (app, 200, ("GET", f"/v1/renders/{render}", token)),
            "complete": (app, 200, ("GET", f"/v1/renders/{complete}", token)),
            "generation": (app, 200, ("GET", f"/v1/generations/{generation}", token)),
            "start": (app, 202, ("POST", "/v1/renders", token, start)),
        }
        names = {
            "read": "GET /v1/renders/{id}, pending",
            "complete": "GET /v1/renders/{id}, complete",
            "generation": "GET /v1/generations/{id}",
            "start": "POST /v1/renders",
        }

        def end_pending() -> None:
            """The concurrency cap counts a user's pending renders: keep that count small."""
            with services.db.transaction() as session:
                session.execute(text(END_PENDING_SQL))

        gc.collect()
        gc.freeze()  # as `renderlab serve` does (api.freeze_startup_heap)
        if profile is not None:
            target, expect, request = cases[profile]
            profiler = cProfile.Profile()
            profiler.enable()
            await measure(target, calls, expect, *request)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
            return
        bare = None
        for key, (target, expect, request) in cases.items():
            if only is not None and key not in (only, "bare Starlette route"):
                continue
            count, between = calls, lambda: None
            if key == "start":  # starts stay pending: end them between rounds, as workers would
                count, between = min(calls, 500), end_pending
            each = await measure(target, count, expect, *request, rounds=rounds, between=between)
            bare = bare or each
            label = names.get(key, key)
            print(f"{label:36s} {each:8.1f} us a call  {each / bare:6.1f}x bare Starlette")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5, help="the fastest round is printed")
    routes = ["read", "complete", "generation", "start"]
    parser.add_argument("--profile", choices=routes, help="cProfile this route")
    parser.add_argument("--only", choices=routes, help="measure this route (and the floor)")
    args = parser.parse_args()
    import uvloop

    uvloop.run(run(args.calls, args.rounds, args.profile, args.only))


if __name__ == "__main__":
    main()
