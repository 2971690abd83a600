"""``routes.LeanRoute`` calls an endpoint of ``str`` path parameters and the ``Request``
directly, skipping FastAPI's request handler; every other endpoint keeps FastAPI's. Either way
the answers, the errors and the OpenAPI document are what FastAPI's own route gives.

(No ``from __future__ import annotations``: FastAPI resolves the endpoints' annotations, and
``caller`` lives in ``build``'s closure.)"""

from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.dependencies import utils as dependency_utils
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from renderlab.api.routes import LeanRoute


class Refused(Exception):
    pass


def build(route_class: type[APIRoute]) -> FastAPI:
    app = FastAPI()
    api = APIRouter(prefix="/things", route_class=route_class)

    @app.exception_handler(Refused)
    async def refused(_request: Request, _exc: Refused) -> Response:
        return Response('{"error":"refused"}', status_code=418, media_type="application/json")

    @api.get("/{id}/parts/{part}", summary="One part", responses={404: {"description": "None"}})
    async def part(id: str, part: str, request: Request) -> Response:
        if id == "refused":
            raise Refused
        body = f'{{"id":"{id}","part":"{part}","ua":"{request.headers.get("user-agent")}"}}'
        return Response(body, media_type="application/json", headers={"X-Id": id})

    @api.get("/{id}/sized")
    async def sized(id: str, size: Annotated[int, Query(ge=1, le=10)]) -> Response:
        return Response(f"{id}:{size}")

    def caller(request: Request) -> str:
        return request.headers.get("x-caller", "nobody")

    @api.get("/{id}/mine")
    async def mine(id: str, who: Annotated[str, Depends(caller)]) -> Response:
        return Response(f"{id}:{who}")

    app.include_router(api)
    return app


@pytest.fixture
def solved(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths FastAPI's dependency solving ran for (its request handler's work)."""
    calls: list[str] = []
    original = dependency_utils.solve_dependencies

    async def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["request"].url.path)
        return await original(*args, **kwargs)

    monkeypatch.setattr("fastapi.routing.solve_dependencies", counted)
    return calls


def answers(app: FastAPI) -> list[tuple[int, str, str | None]]:
    """Status, body and one header of each request, the same list for either route class."""
    client = TestClient(app, raise_server_exceptions=False)
    paths = ["/things/a1/parts/b2", "/things/refused/parts/x", "/things/a/sized?size=3"]
    paths += ["/things/a/sized?size=0", "/things/a/sized", "/things/a/mine"]
    out = []
    for path in paths:
        response = client.get(path, headers={"x-caller": "alice", "user-agent": "t"})
        out.append((response.status_code, response.text, response.headers.get("x-id")))
    wrong = client.post("/things/a1/parts/b2")  # a method the route does not take
    out.append((wrong.status_code, wrong.text, wrong.headers.get("allow")))
    return out


def test_lean_routes_answer_as_fastapis_own(solved: list[str]) -> None:
    standard, lean = answers(build(APIRoute)), answers(build(LeanRoute))
    assert lean == standard
    assert lean[0] == (200, '{"id":"a1","part":"b2","ua":"t"}', "a1")
    assert lean[1][0] == 418  # the app's exception handler, as for FastAPI's route
    assert [status for status, _, _ in lean[2:5]] == [200, 422, 422]  # FastAPI validated
    assert lean[5][:2] == (200, "a:alice")  # the dependency was solved
    assert lean[6][0] == 405 and lean[6][2] == "GET"


def test_only_plain_endpoints_skip_fastapis_request_handler(solved: list[str]) -> None:
    client = TestClient(build(LeanRoute))
    client.get("/things/a/parts/b")
    client.get("/things/a/sized?size=2")
    client.get("/things/a/mine")
    assert solved == ["/things/a/sized", "/things/a/mine"]
    solved.clear()
    TestClient(build(APIRoute)).get("/things/a/parts/b")
    assert solved == ["/things/a/parts/b"]  # what the lean route saves


def test_the_openapi_document_is_the_same() -> None:
    assert build(LeanRoute).openapi() == build(APIRoute).openapi()
