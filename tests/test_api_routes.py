"""The routes of the contract on SQLite and PostgreSQL: shapes, statuses, paging, caps, quota,
idempotency."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from renderlab import store
from renderlab.clock import now_ms
from renderlab.limits import Limits
from renderlab.services import Services
from tests.api_helpers import Api, attach_local_storage, make_api
from tests.conftest import FakeClock
from tests.factories import PROPS

# Every time in the API, in one form: milliseconds, UTC.
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
RENDER_FIELDS = {
    "id",
    "user_id",
    "generation_id",
    "render_id",
    "bucket_name",
    "status",
    "progress",
    "output_url",
    "output_size",
    "error",
    "created_at",
    "completed_at",
    "width",
    "height",
    "fps",
    "codec",
    "duration_in_frames",
    "poster_frame",
    "poster_url",
    "metadata",
    "webhook_url",
    "warnings",
    "error_code",
    "expires_at",
    "output_expired",
}


@pytest.fixture
def alice(services: Services) -> Api:
    # These tests start more renders of one user than the concurrency cap lets run at once.
    services.limits = services.limits.model_copy(update={"max_concurrent_renders": 10})
    return Api(make_api(services), "alice")


def new_generation(api: Api, **props: Any) -> dict[str, Any]:
    response = api.post(
        "/v1/generations", json={"prompt": "say hi", "animation_props": {**PROPS, **props}}
    )
    assert response.status_code == 201, response.text
    return response.json()


def start(api: Api, generation_id: str, **body: Any) -> Any:
    return api.post("/v1/renders", json={"generation_id": generation_id, **body})


def test_generation_roundtrip(alice: Api) -> None:
    created = new_generation(alice, style="typewriter")
    assert created["user_id"] == "renderlab|alice"
    assert created["prompt"] == "say hi"
    assert created["animation_props"]["style"] == "typewriter"
    assert created["animation_props"]["font_family"] == "Inter"  # defaults are filled in
    assert created["latest_render"] is None
    assert RFC3339.match(created["created_at"])
    fetched = alice.get(f"/v1/generations/{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == created


def test_invalid_props_name_every_failing_field(alice: Api) -> None:
    response = alice.post(
        "/v1/generations",
        json={"animation_props": {**PROPS, "text": "", "color": "red", "font_size": 500}},
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    fields = {f["field"] for f in error["fields"]}
    assert fields == {"animation_props.text", "animation_props.color", "animation_props.font_size"}
    assert all(f["location"] == "body" for f in error["fields"])
    typo = alice.post("/v1/generations", json={"animation_props": {**PROPS, "colour": "red"}})
    assert typo.json()["error"]["fields"][0]["message"] == (
        "Extra inputs are not permitted (did you mean 'color'?)"
    )
    # "colour" alone is a missing color and an extra colour: the near miss is said first
    alone = {k: v for k, v in PROPS.items() if k != "color"} | {"colour": "#FFFFFF"}
    near = alice.post("/v1/generations", json={"animation_props": alone}).json()["error"]
    assert near["message"] == (
        "Invalid request: animation_props.colour: Extra inputs are not permitted"
        " (did you mean 'color'?)"
    )
    assert [f["field"] for f in near["fields"]] == [
        "animation_props.colour",
        "animation_props.color",
    ]
    bounce = alice.post("/v1/generations", json={"animation_props": {**PROPS, "style": "bounce"}})
    assert bounce.json()["error"]["fields"][0]["message"].endswith(", not 'bounce'")
    color = next(f for f in error["fields"] if f["field"] == "animation_props.color")
    assert color["message"] == (
        "color must be a colour as #RRGGBB (six hex digits, like #FFFFFF), not 'red'"
    )
    unknown = alice.post("/v1/generations", json={"animation_props": PROPS, "extra": 1})
    assert unknown.status_code == 422
    assert [f["field"] for f in unknown.json()["error"]["fields"]] == ["extra"]
    not_json = alice.post(
        "/v1/generations", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 422
    assert not_json.json()["error"]["code"] == "invalid_request"


def test_props_over_the_caps_say_the_caps_sentences(alice: Api) -> None:
    """Above the props' own bounds (the default caps): the seed's "Animation too long" and both
    sides' limits, not pydantic's "less than or equal to" (a fresh-eyes run)."""
    body = {"animation_props": {**PROPS, "duration_in_frames": 900, "width": 3840, "height": 2160}}
    error = alice.post("/v1/generations", json=body).json()["error"]
    messages = {f["field"]: f["message"] for f in error["fields"]}
    assert messages["animation_props.duration_in_frames"] == (
        "Animation too long. Maximum duration is 20 seconds (600 frames at 30 fps), got 900."
    )
    assert messages["animation_props.height"] == (
        "height must be at most 1920 pixels (the longer side; the shorter at most 1080), got 2160."
    )


def test_generations_page_newest_first_with_latest_render(alice: Api) -> None:
    ids = [new_generation(alice, text=f"number {i}")["id"] for i in range(5)]
    render = start(alice, ids[1]).json()
    first = alice.get("/v1/generations", params={"limit": 2}).json()
    assert [g["id"] for g in first["items"]] == [ids[4], ids[3]]
    assert first["next_cursor"]
    second = alice.get("/v1/generations", params={"limit": 2, "cursor": first["next_cursor"]})
    page = second.json()
    assert [g["id"] for g in page["items"]] == [ids[2], ids[1]]
    assert page["items"][1]["latest_render"]["id"] == render["id"]
    assert page["items"][0]["latest_render"] is None
    last = alice.get("/v1/generations", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [g["id"] for g in last["items"]] == [ids[0]]
    assert last["next_cursor"] is None
    one = alice.get(f"/v1/generations/{ids[1]}").json()
    assert one["latest_render"]["id"] == render["id"]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"cursor": "garbage!"}, "cursor")],
)
def test_bad_paging_is_422_naming_the_field(alice: Api, params: dict[str, Any], field: str) -> None:
    for path in ("/v1/generations", "/v1/renders"):
        response = alice.get(path, params=params)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["fields"][0]["field"] == field


def test_start_render_returns_a_pending_render(alice: Api) -> None:
    generation = new_generation(alice, duration_in_frames=90)
    response = start(alice, generation["id"], width=1280, height=720)
    assert response.status_code == 202, response.text
    render = response.json()
    assert set(render) == RENDER_FIELDS
    assert render["status"] == "pending"
    assert render["progress"] == 0
    assert render["user_id"] == "renderlab|alice"
    assert (render["width"], render["height"], render["fps"]) == (1280, 720, 30)
    assert (render["codec"], render["duration_in_frames"]) == ("h264", 90)
    assert render["completed_at"] is None and render["output_url"] is None
    assert response.headers["Location"] == f"/v1/renders/{render['id']}"
    assert alice.get(f"/v1/renders/{render['id']}").json() == render
    default = start(alice, generation["id"]).json()
    assert (default["width"], default["height"]) == (1920, 1080)


def test_list_renders_and_newest_by_generation(alice: Api) -> None:
    g1 = new_generation(alice)["id"]
    g2 = new_generation(alice)["id"]
    r1 = start(alice, g1).json()["id"]
    r2 = start(alice, g2).json()["id"]
    r3 = start(alice, g1).json()["id"]
    listed = alice.get("/v1/renders").json()
    assert [r["id"] for r in listed["items"]] == [r3, r2, r1]
    assert listed["next_cursor"] is None
    page = alice.get("/v1/renders", params={"limit": 2}).json()
    assert [r["id"] for r in page["items"]] == [r3, r2]
    rest = alice.get("/v1/renders", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [r["id"] for r in rest["items"]] == [r1]
    newest = alice.get("/v1/renders", params={"generation_id": g1}).json()
    assert [r["id"] for r in newest["items"]] == [r3]
    none = alice.get("/v1/renders", params={"generation_id": new_generation(alice)["id"]})
    assert none.json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"width": 3840, "height": 2160}, "resolution_too_large", "width"),
        ({"width": 1279, "height": 720}, "invalid_resolution", "width"),
        ({"width": 1280, "height": 8}, "invalid_resolution", "height"),
        ({"codec": "av1"}, "invalid_request", "codec"),
        ({"width": "wide"}, "invalid_request", "width"),
        ({"speed": 2}, "invalid_request", "speed"),
    ],
)
def test_render_settings_outside_the_caps_are_422(
    alice: Api, body: dict[str, Any], code: str, field: str
) -> None:
    generation = new_generation(alice)["id"]
    response = start(alice, generation, **body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["fields"][0]["field"] == field
    assert alice.get("/v1/quota").json()["remaining"] == 5  # refused requests cost nothing


def test_duration_cap_message_is_the_seeds(services: Services) -> None:
    services.limits = Limits(max_duration_seconds=2)
    api = Api(make_api(services), "alice")
    generation = new_generation(api, duration_in_frames=90)["id"]
    response = start(api, generation)
    assert response.status_code == 422
    assert response.json()["error"] == {
        "code": "duration_too_long",
        "message": "Animation too long. Maximum duration is 2 seconds.",
        "fields": [
            {
                "field": "duration_in_frames",
                "location": "body",
                "message": "Animation too long. Maximum duration is 2 seconds.",
            }
        ],
    }


def test_a_codec_too_slow_for_the_props_is_refused_naming_the_codec(alice: Api) -> None:
    words = {"text": ("word " * 100).strip(), "style": "typewriter", "font_size": 12}
    generation = new_generation(alice, duration_in_frames=600, **words)["id"]
    refused = start(alice, generation, codec="prores")
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert (error["code"], error["fields"][0]["field"]) == ("render_too_costly", "codec")
    assert "use codec h264" in error["message"]
    assert alice.get("/v1/quota").json()["remaining"] == 5
    assert start(alice, generation, codec="h264").status_code == 202


@pytest.mark.parametrize(
    ("font_family", "warned"),
    [("Comic Sans", True), ("Roboto", False), ("'Comic Sans', sans-serif", False)],
)
def test_a_font_that_is_not_installed_is_a_render_warning(
    alice: Api, font_family: str, warned: bool
) -> None:
    """The CLI said so and the page did; a script reading the API now learns it too."""
    background = {"background_color": "#102030"}  # no transparency warning beside it
    generation = new_generation(alice, font_family=font_family, **background)["id"]
    render = start(alice, generation)
    assert render.status_code == 202, render.text
    notes = [w for w in render.json()["warnings"] if "is not installed" in w]
    assert notes == (
        [f"font_family {font_family!r} is not installed here: the text is drawn in Inter."]
        if warned
        else []
    )


def test_quota_over_http(alice: Api, clock: FakeClock) -> None:
    generation = new_generation(alice)["id"]
    fresh = alice.get("/v1/quota")
    assert fresh.json() == {"limit": 5, "remaining": 5, "retry_after_ms": None, "resets_at": None}
    assert fresh.headers["RateLimit-Policy"] == '"renders";q=5;w=3600'
    assert fresh.headers["RateLimit"] == '"renders";r=5;t=0'
    for _ in range(5):
        response = start(alice, generation)
        assert response.status_code == 202
        assert response.headers["RateLimit-Policy"] == '"renders";q=5;w=3600'
    assert alice.get("/v1/quota").json()["remaining"] == 0  # reading consumes nothing
    assert alice.get("/v1/quota").json()["remaining"] == 0
    refused = start(alice, generation)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["message"] == (
        "Render quota exceeded. You can render up to 5 videos per hour. Please try again later."
    )
    assert 0 < error["retry_after_ms"] <= 3_600_000
    assert refused.headers["Retry-After"] == str(math.ceil(error["retry_after_ms"] / 1000))
    assert refused.headers["RateLimit-Policy"] == '"renders";q=5;w=3600'
    assert refused.headers["RateLimit"] == f'"renders";r=0;t={refused.headers["Retry-After"]}'
    status = alice.get("/v1/quota").json()
    assert status["remaining"] == 0
    assert status["retry_after_ms"] == error["retry_after_ms"]
    assert RFC3339.match(status["resets_at"])
    clock.advance(error["retry_after_ms"])
    assert start(alice, generation).status_code == 202


def test_idempotency_key_replays_the_first_render_without_quota(alice: Api) -> None:
    generation = new_generation(alice)["id"]
    key = {"Idempotency-Key": "order-42"}
    first = alice.post("/v1/renders", json={"generation_id": generation}, headers=key)
    assert first.status_code == 202
    again = alice.post("/v1/renders", json={"generation_id": generation}, headers=key)
    assert again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert alice.get("/v1/quota").json()["remaining"] == 4
    other = alice.post(
        "/v1/renders", json={"generation_id": generation, "width": 1280, "height": 720}, headers=key
    )
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert other.json()["error"]["fields"][0]["field"] == "Idempotency-Key"
    too_long = alice.post(
        "/v1/renders", json={"generation_id": generation}, headers={"Idempotency-Key": "k" * 256}
    )
    assert too_long.status_code == 422
    assert too_long.json()["error"]["fields"][0] == {
        "field": "Idempotency-Key",
        "location": "header",
        "message": too_long.json()["error"]["fields"][0]["message"],
    }


def test_same_idempotency_key_of_two_users_are_independent(services: Services) -> None:
    app = make_api(services)
    alice, bob = Api(app, "alice"), Api(app, "bob")
    key = {"Idempotency-Key": "same"}
    a = alice.post("/v1/renders", json={"generation_id": new_generation(alice)["id"]}, headers=key)
    b = bob.post("/v1/renders", json={"generation_id": new_generation(bob)["id"]}, headers=key)
    assert a.status_code == b.status_code == 202
    assert a.json()["id"] != b.json()["id"]


def test_render_object_reflects_pipeline_updates(alice: Api, services: Services) -> None:
    generation = new_generation(alice)["id"]
    render_id = start(alice, generation).json()["id"]
    with services.db.transaction() as session:
        store.update(session, render_id, now=now_ms(), status="rendering", progress=40)
        store.update(
            session,
            render_id,
            now=now_ms(),
            status="complete",
            output_url="https://example.test/v.mp4",
            output_size=1234,
        )
    render = alice.get(f"/v1/renders/{render_id}").json()
    assert (render["status"], render["progress"], render["output_size"]) == ("complete", 100, 1234)
    assert render["output_url"] == "https://example.test/v.mp4"
    assert RFC3339.match(render["completed_at"])


def test_health(services: Services) -> None:
    client = TestClient(make_api(services))
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "auth": "dev"}


def test_openapi_document_lists_every_contract_route(services: Services) -> None:
    document = TestClient(make_api(services)).get("/openapi.json").json()
    expected = {
        ("post", "/v1/generations"),
        ("get", "/v1/generations"),
        ("get", "/v1/generations/{id}"),
        ("get", "/v1/generations/{id}/still"),
        ("post", "/v1/renders"),
        ("get", "/v1/renders"),
        ("get", "/v1/renders/{id}"),
        ("get", "/v1/renders/{id}/events"),
        ("post", "/v1/renders/{id}/download-url"),
        ("post", "/v1/renders/{id}/cancel"),
        ("get", "/v1/quota"),
        ("post", "/v1/auth/token"),
        ("post", "/v1/stills"),
        ("get", "/healthz"),
    }
    present = {(m, p) for p, ops in document["paths"].items() for m in ops}
    assert expected <= present


def test_still_is_a_png_of_the_asked_size_and_costs_no_quota(alice: Api) -> None:
    generation = new_generation(alice, duration_in_frames=60)["id"]
    response = alice.get(
        f"/v1/generations/{generation}/still", params={"frame": 45, "width": 320, "height": 180}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.headers["cache-control"].startswith("private, max-age=")
    png = response.content
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (320, 180)
    assert alice.get("/v1/quota").json()["remaining"] == 5


@pytest.mark.parametrize(
    ("params", "code", "field"),
    [
        ({"frame": 60}, "invalid_request", "frame"),
        ({"frame": -1}, "invalid_request", "frame"),
        ({"width": 3840, "height": 2160}, "resolution_too_large", "width"),
        ({"width": 321, "height": 180}, "invalid_resolution", "width"),
    ],
)
def test_still_outside_the_animation_or_caps_is_422(
    alice: Api, params: dict[str, Any], code: str, field: str
) -> None:
    generation = new_generation(alice, duration_in_frames=60)["id"]
    response = alice.get(f"/v1/generations/{generation}/still", params=params)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["fields"][0]["field"] == field


def test_download_url_for_a_complete_render_only(services: Services) -> None:
    attach_local_storage(services)
    api = Api(make_api(services), "alice")
    render_id = start(api, new_generation(api)["id"]).json()["id"]
    pending = api.post(f"/v1/renders/{render_id}/download-url")
    assert pending.status_code == 409
    assert pending.json()["error"]["code"] == "render_not_complete"
    with services.db.transaction() as session:
        store.update(session, render_id, now=now_ms(), status="rendering", progress=50)
        store.update(
            session,
            render_id,
            now=now_ms(),
            status="complete",
            output_key=f"renders/{render_id}.mp4",
        )
    video = services.settings.data_path / "video.mp4"
    video.write_bytes(b"a stored output")  # download-url is a 410 when the object is gone
    services.storage.put_file(f"renders/{render_id}.mp4", video, "video/mp4")
    response = api.post(f"/v1/renders/{render_id}/download-url")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"url", "expires_at"}
    assert f"renders/{render_id}.mp4" in body["url"]
    assert RFC3339.match(body["expires_at"])


def test_cancel_gives_the_slot_back_and_only_once(alice: Api) -> None:
    render_id = start(alice, new_generation(alice)["id"]).json()["id"]
    assert alice.get("/v1/quota").json()["remaining"] == 4
    cancelled = alice.post(f"/v1/renders/{render_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    render = cancelled.json()
    assert (render["status"], render["error"]) == ("failed", "Render cancelled.")
    assert RFC3339.match(render["completed_at"])
    assert alice.get("/v1/quota").json()["remaining"] == 5
    again = alice.post(f"/v1/renders/{render_id}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "render_finished"
