"""Owner-only access: every route that takes an id answers another user's objects exactly as it
answers ids that do not exist (404, same body), and nothing of theirs is listed or spent."""

from __future__ import annotations

from typing import Any

import pytest

from renderlab import store
from renderlab.clock import now_ms
from renderlab.ids import new_id
from renderlab.services import Services
from tests.api_helpers import Api, make_api, user_id_of
from tests.factories import make_generation, make_render

GENERATION_ROUTES = [
    ("get", "/v1/generations/{id}"),
    ("get", "/v1/generations/{id}/still?frame=0"),
]
RENDER_ROUTES = [
    ("get", "/v1/renders/{id}"),
    ("get", "/v1/renders/{id}/events"),
    ("post", "/v1/renders/{id}/download-url"),
    ("post", "/v1/renders/{id}/cancel"),
]


@pytest.fixture
def world(services: Services) -> dict[str, Any]:
    app = make_api(services)
    bob = user_id_of(app, "bob")
    generation = make_generation(services.db, bob)
    pending = make_render(services.db, bob, generation)
    complete = make_render(services.db, bob, generation)
    with services.db.transaction() as session:
        store.update(session, complete, now=now_ms(), status="rendering", progress=50)
        store.update(session, complete, now=now_ms(), status="complete", output_key="renders/x.mp4")
    return {
        "alice": Api(app, "alice"),
        "bob": Api(app, "bob"),
        "generation": generation,
        "renders": [pending, complete],
    }


def call(api: Api, method: str, path: str) -> Any:
    return getattr(api, method)(path)


def assert_same_404(api: Api, method: str, template: str, theirs: str) -> None:
    answers = [call(api, method, template.format(id=i)) for i in (theirs, new_id(), "nope")]
    for response in answers:
        assert response.status_code == 404, (template, response.text)
        assert response.headers["content-type"] == "application/json"
    assert answers[0].json() == answers[1].json() == answers[2].json(), template
    assert answers[0].json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(("method", "template"), GENERATION_ROUTES)
def test_generation_routes_hide_other_users_generations(
    world: dict[str, Any], method: str, template: str
) -> None:
    assert_same_404(world["alice"], method, template, world["generation"])


@pytest.mark.parametrize(("method", "template"), RENDER_ROUTES)
def test_render_routes_hide_other_users_renders(
    world: dict[str, Any], method: str, template: str
) -> None:
    for render_id in world["renders"]:
        assert_same_404(world["alice"], method, template, render_id)


def test_cannot_render_another_users_generation_and_it_costs_nothing(
    world: dict[str, Any],
) -> None:
    alice: Api = world["alice"]
    theirs = alice.post("/v1/renders", json={"generation_id": world["generation"]})
    missing = alice.post("/v1/renders", json={"generation_id": new_id()})
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json()
    assert alice.get("/v1/quota").json()["remaining"] == 5


def test_lists_show_only_my_objects(world: dict[str, Any]) -> None:
    alice: Api = world["alice"]
    assert alice.get("/v1/generations").json() == {"items": [], "next_cursor": None}
    assert alice.get("/v1/renders").json() == {"items": [], "next_cursor": None}
    by_generation = alice.get("/v1/renders", params={"generation_id": world["generation"]})
    assert by_generation.json() == {"items": [], "next_cursor": None}
    bob: Api = world["bob"]
    assert len(bob.get("/v1/renders").json()["items"]) == 2
    assert bob.get(f"/v1/generations/{world['generation']}").status_code == 200
