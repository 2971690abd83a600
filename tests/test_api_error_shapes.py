"""The contract's error shape at the edges FastAPI and Starlette answer by themselves: a body
that is not JSON, a method the path does not take, and the OpenAPI document's constraints."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from renderlab.services import Services
from tests.api_helpers import Api, make_api


@pytest.fixture
def api(services: Services) -> Api:
    return Api(make_api(services), "alice")


@pytest.mark.parametrize(
    "body",
    [b'{"generation_id": ', b"{'a': 1}", b'{"a": 1} trailing', b"[1, 2", b"\xff\xfe"],
)
def test_malformed_json_names_the_body(api: Api, body: bytes) -> None:
    response = api.post("/v1/renders", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert [(f["field"], f["location"]) for f in error["fields"]] == [("body", "body")]
    assert "JSON" in error["message"]


def test_malformed_json_says_where_it_stops(api: Api) -> None:
    response = api.post(
        "/v1/renders",
        content=b'{"generation_id": 1 2}',
        headers={"Content-Type": "application/json"},
    )
    assert response.json()["error"]["message"] == (
        "The request body is not valid JSON: Expecting ',' delimiter at character 20."
    )


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        # curl -d without -H 'Content-Type: application/json': FastAPI reads no JSON at all
        (
            b'{"generation_id": "x"}',
            {"Content-Type": "application/x-www-form-urlencoded"},
            "The body must be a JSON object sent with Content-Type: application/json;"
            " this request's was application/x-www-form-urlencoded.",
        ),
        (
            b'{"generation_id": "x"}',
            {},
            "The body must be a JSON object sent with Content-Type: application/json;"
            " this request had none.",
        ),
        (
            b"",
            {"Content-Type": "application/json"},
            "The request has no body: send a JSON object with Content-Type: application/json.",
        ),
        (
            b"[]",
            {"Content-Type": "application/json"},
            "The body must be a JSON object, not an array.",
        ),
        (
            b"7",
            {"Content-Type": "application/json"},
            "The body must be a JSON object, not a number.",
        ),
    ],
)
def test_a_body_that_is_not_a_json_object_says_what_to_send(
    api: Api, body: bytes, headers: dict[str, str], message: str
) -> None:
    """It said "body: Input should be a valid dictionary or object to extract fields from"."""
    response = api.post("/v1/generations", content=body, headers=headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["message"] == message
    assert error["fields"] == [{"field": "body", "location": "body", "message": message}]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/renders", {"GET", "POST"}),
        ("DELETE", "/v1/generations", {"GET", "POST"}),
        ("PATCH", "/v1/quota", {"GET"}),
    ],
)
def test_405_allows_every_method_of_the_path(
    api: Api, method: str, path: str, allowed: set[str]
) -> None:
    response = api.client.request(method, path, headers=api.headers)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    listed = {m.strip() for m in response.headers["allow"].split(",")}
    assert allowed <= listed, listed
    for other in listed - {"HEAD"}:
        answer = api.client.request(other, path, headers=api.headers)
        assert answer.status_code != 405, other


def test_openapi_carries_the_constraints_the_server_enforces(services: Services) -> None:
    document = TestClient(make_api(services)).get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    create = schemas["RenderCreate"]["properties"]
    for side in ("width", "height"):
        assert create[side]["minimum"] == services.limits.min_dimension
        assert create[side]["maximum"] == services.limits.max_width
    assert create["width"]["multipleOf"] == 2
    assert create["codec"]["enum"] == ["h264", "vp9", "prores", "gif"]
    assert create["poster_frame"]["anyOf"][0]["minimum"] == 0
    assert create["poster_frame"]["maximum"] == 599
    token = schemas["TokenRequest"]["properties"]["name"]
    assert token["maxLength"] == services.limits.token_name_max_chars
    text = schemas["TextAnimationProps"]["properties"]["text"]
    assert (text["minLength"], text["maxLength"]) == (1, 500)
    listing = document["paths"]["/v1/renders"]["get"]["parameters"]
    cursor = next(p for p in listing if p["name"] == "cursor")
    assert "pattern" in str(cursor["schema"])
