"""``PrefixRouter`` skips its routes only for paths that none of them could match."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.responses import PlainTextResponse

from renderlab.api.routes import PrefixRouter


def _app() -> FastAPI:
    api = PrefixRouter(prefix="/v1/things")

    @api.get("")
    async def listing() -> Any:
        return PlainTextResponse("list")

    @api.get("/{id}")
    async def one(id: str) -> Any:
        return PlainTextResponse(f"one {id}")

    other = PrefixRouter(prefix="/v1/thingsx")

    @other.get("/{id}")
    async def lookalike(id: str) -> Any:
        return PlainTextResponse(f"lookalike {id}")

    app = FastAPI()
    app.include_router(api)
    app.include_router(other)
    return app


def test_paths_inside_the_prefix_reach_its_routes_and_others_pass_on() -> None:
    client = TestClient(_app())
    assert client.get("/v1/things").text == "list"
    assert client.get("/v1/things/7").text == "one 7"
    assert client.get("/v1/thingsx/7").text == "lookalike 7"  # not taken for /v1/things
    assert client.get("/v1/thing/7").status_code == 404
    assert client.get("/v2/things/7").status_code == 404


def test_a_root_path_is_taken_off_before_the_prefix_is_compared() -> None:
    client = TestClient(_app(), root_path="/api")
    assert client.get("/api/v1/things/7").text == "one 7"
