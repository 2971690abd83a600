"""``/docs`` served offline (every asset from renderlab itself), webhooks described in the
OpenAPI document, and ``GET /v1/compositions``: a props schema that accepts and refuses what
the server does, caps included."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import pytest

from renderlab import caps
from renderlab.limits import Limits
from renderlab.services import Services
from tests.api_helpers import Api, make_api
from tests.factories import PROPS


@pytest.fixture
def alice(services: Services) -> Api:
    return Api(make_api(services), "alice")


def test_docs_reference_only_same_origin_assets_that_answer(alice: Api) -> None:
    page = alice.client.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    urls += re.findall(r"""url:\s*['"]([^'"]+)['"]""", page.text)
    assert "http" not in page.text.replace("http-equiv", ""), "an absolute URL in /docs"
    assert len(urls) >= 3
    kinds = set()
    for url in urls:
        assert url.startswith("/"), url
        answer = alice.client.get(url)
        assert answer.status_code == 200, url
        kinds.add(answer.headers["content-type"].split(";")[0])
    assert {"text/javascript", "text/css", "application/json"} <= kinds


def test_the_openapi_document_describes_the_webhook(alice: Api) -> None:
    document = alice.client.get("/openapi.json").json()
    hook = document["webhooks"]["render-ended"]["post"]
    assert "webhook-signature" in hook["description"]
    assert "verify_webhook" in hook["description"]
    body = hook["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/WebhookEvent")


def _schema(alice: Api) -> dict[str, Any]:
    response = alice.get("/v1/compositions")
    assert response.status_code == 200, response.text
    (item,) = response.json()["items"]
    assert item["id"] == "text-animation" and item["description"]
    return item["props_schema"]


CASES: list[dict[str, Any]] = [
    PROPS,
    {**PROPS, "background_color": None, "font_size": 12.5, "font_family": "Roboto"},
    {"text": "hi", "style": "scale", "color": "#00ff00"},
    {**PROPS, "style": "spin"},
    {**PROPS, "color": "white"},
    {**PROPS, "font_size": 201},
    {**PROPS, "font_size": "48"},
    {**PROPS, "duration_in_frames": 29},
    {**PROPS, "duration_in_frames": 60.5},  # (60.0 is an integer to JSON Schema)
    {**PROPS, "fps": 60},
    {**PROPS, "extra": 1},
    {**PROPS, "text": ""},
    {**PROPS, "font_family": ""},
    {key: value for key, value in PROPS.items() if key != "color"},
]


@pytest.mark.parametrize("props", CASES)
def test_the_props_schema_agrees_with_the_server(alice: Api, props: dict[str, Any]) -> None:
    schema = _schema(alice)
    by_schema = jsonschema.Draft202012Validator(schema).is_valid(props)
    response = alice.post("/v1/generations", json={"animation_props": props})
    assert response.status_code in (201, 422), response.text
    assert by_schema == (response.status_code == 201), (props, response.text)


def test_the_schema_carries_the_duration_cap_in_force(services: Services) -> None:
    services.limits = Limits(max_duration_seconds=5)
    alice = Api(make_api(services), "alice")
    schema = _schema(alice)
    assert schema["properties"]["duration_in_frames"]["maximum"] == 150
    validator = jsonschema.Draft202012Validator(schema)
    for frames in (150, 151):
        props = {**PROPS, "duration_in_frames": frames}
        try:
            caps.check_duration(frames, 30, services.limits)
            allowed = True
        except caps.CapError as exc:
            assert exc.code == "duration_too_long"
            allowed = False
        assert validator.is_valid(props) == allowed
