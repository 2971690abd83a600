"""Strings the database cannot store and read back (NUL, lone surrogates) are refused at the
edge with a 422 naming the field, in every field; text that draws nothing is a 422 naming
``animation_props.text``; the render request's numbers are strict (and a refused request costs
no quota). On SQLite and PostgreSQL, and each refused request leaves the user's lists readable."""

from __future__ import annotations

import json
from typing import Any

import pytest

from renderlab.services import Services
from renderlab.strings import draws_nothing, storable
from tests.api_helpers import Api, make_api
from tests.factories import PROPS

LONE_SURROGATE = "\ud800"
NUL = "\x00"


@pytest.fixture
def alice(services: Services) -> Api:
    return Api(make_api(services), "alice")


def post_json(api: Api, url: str, body: Any) -> Any:
    """JSON as a client sends it, ``\\ud800`` escapes included (json.dumps' ASCII output)."""
    content = json.dumps(body).encode("ascii")
    return api.post(url, content=content, headers={"Content-Type": "application/json"})


def refused_field(response: Any) -> str:
    assert response.status_code == 422, response.text
    body = response.json()["error"]
    assert body["code"] == "invalid_request"
    return body["fields"][0]["field"]


def assert_lists_still_readable(api: Api, generations: int = 0) -> None:
    for url in ("/v1/generations", "/v1/renders"):
        response = api.get(url)
        assert response.status_code == 200, response.text
    assert len(api.get("/v1/generations").json()["items"]) == generations


BAD_STRINGS = [
    pytest.param(LONE_SURROGATE, id="lone-high-surrogate"),
    pytest.param("ok \udfff", id="lone-low-surrogate"),
    pytest.param(f"a{NUL}b", id="nul"),
]


@pytest.mark.parametrize("bad", BAD_STRINGS)
@pytest.mark.parametrize(
    ("body", "field"),
    [
        (lambda bad: {"animation_props": {**PROPS, "text": bad}}, "animation_props.text"),
        (
            lambda bad: {"animation_props": {**PROPS, "font_family": bad}},
            "animation_props.font_family",
        ),
        (lambda bad: {"prompt": bad, "animation_props": PROPS}, "prompt"),
    ],
    ids=["text", "font_family", "prompt"],
)
def test_unstorable_strings_in_a_generation_are_422_and_nothing_is_stored(
    alice: Api, bad: str, body: Any, field: str
) -> None:
    assert refused_field(post_json(alice, "/v1/generations", body(bad))) == field
    assert_lists_still_readable(alice)


@pytest.mark.parametrize("bad", BAD_STRINGS)
def test_unstorable_strings_elsewhere_are_422_naming_the_field(alice: Api, bad: str) -> None:
    assert refused_field(post_json(alice, "/v1/auth/token", {"name": bad})) == "name"
    still = {"animation_props": {**PROPS, "text": bad}}
    assert refused_field(post_json(alice, "/v1/stills", still)) == "animation_props.text"
    assert refused_field(post_json(alice, "/v1/renders", {"generation_id": bad})) == (
        "generation_id"
    )
    # An unknown field whose very name cannot be encoded: still a 422, never a 500.
    unknown = {"animation_props": PROPS, f"x{bad}": 1}
    assert refused_field(post_json(alice, "/v1/generations", unknown)) == "body"
    assert_lists_still_readable(alice)


@pytest.mark.parametrize(
    "text",
    [" ", "   \t\n", "\u200b", "\u200d", "\ufeff", "\u3000\u200b\u2060", "\u2800", "\u3164"],
    ids=["space", "whitespace", "zwsp", "zwj", "bom", "mixed", "braille-blank", "hangul-filler"],
)
def test_text_that_draws_nothing_is_422_naming_the_text(alice: Api, text: str) -> None:
    body = {"animation_props": {**PROPS, "text": text}}
    assert refused_field(post_json(alice, "/v1/generations", body)) == "animation_props.text"
    assert refused_field(post_json(alice, "/v1/stills", body)) == "animation_props.text"
    assert_lists_still_readable(alice)


@pytest.mark.parametrize("text", ["a\u200b", "\U0001f469\u200d\U0001f4bb", " x ", "\U0001f600"])
def test_text_with_something_to_draw_is_stored_and_read_back(alice: Api, text: str) -> None:
    response = post_json(alice, "/v1/generations", {"animation_props": {**PROPS, "text": text}})
    assert response.status_code == 201, response.text
    listed = alice.get("/v1/generations").json()["items"]
    assert [item["animation_props"]["text"] for item in listed] == [text]


@pytest.mark.parametrize(
    ("field", "value"),
    [("width", "320"), ("width", 1920.0), ("height", 1080.0), ("height", "720"), ("width", True)],
)
def test_render_request_types_are_strict_and_cost_no_quota(
    alice: Api, field: str, value: Any
) -> None:
    generation = post_json(alice, "/v1/generations", {"animation_props": PROPS}).json()["id"]
    before = alice.get("/v1/quota").json()
    response = post_json(alice, "/v1/renders", {"generation_id": generation, field: value})
    assert refused_field(response) == field
    assert alice.get("/v1/quota").json() == before
    assert alice.get("/v1/renders").json()["items"] == []


def test_the_core_validator() -> None:
    assert storable("caf\u00e9 \U0001f600") is None
    assert storable(NUL) and storable(LONE_SURROGATE)
    assert draws_nothing("\u200b\ufeff ") and not draws_nothing("\u200ba")
