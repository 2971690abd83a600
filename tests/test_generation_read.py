"""``GET /v1/generations/{id}``: its body is the one ``GenerationOut`` would serialise, byte for
byte, for new rows and rows of an earlier revision; its newest render is the generation's own,
found through ``by_generation`` however many other renders the user has."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text

from renderlab.api.schemas import GenerationOut, RenderOut
from renderlab.limits import Limits
from renderlab.models import Generation
from renderlab.services import Services
from renderlab.store import generations as stored
from tests.api_helpers import Api, make_api
from tests.conftest import FakeClock
from tests.factories import PROPS
from tests.sql_plans import sqlite_plan


@pytest.fixture
def limits() -> Limits:
    return Limits(max_concurrent_renders=50, renders_per_hour=100)


@pytest.fixture
def alice(services: Services) -> Api:
    return Api(make_api(services), "alice")


def made(api: Api, **props: Any) -> dict[str, Any]:
    body = {"prompt": 'Grüße, 👋 "quoted"', "animation_props": {**PROPS, **props}}
    response = api.post("/v1/generations", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def start(api: Api, generation_id: str) -> dict[str, Any]:
    response = api.post("/v1/renders", json={"generation_id": generation_id})
    assert response.status_code == 202, response.text
    return response.json()


def expected(services: Services, generation_id: str, latest: dict[str, Any] | None) -> bytes:
    """What ``GenerationOut.of`` serialises for the stored row (the list's path)."""
    with services.db.session() as session:
        row = session.execute(select(Generation).where(Generation.id == generation_id)).scalar()
        assert row is not None
        render = None if latest is None else RenderOut.model_construct(**latest)
        return GenerationOut.of(row, "renderlab|alice", render).model_dump_json().encode()


def test_read_is_the_models_json_byte_for_byte(alice: Api, services: Services) -> None:
    plain = made(alice, text="plain")
    portrait = made(alice, text="tall", width=1080, height=1920, background_color="#102030")
    for generation in (plain, portrait):
        for _ in range(2):  # the second read comes from the serialised part
            response = alice.get(f"/v1/generations/{generation['id']}")
            assert response.status_code == 200
            assert response.content == expected(services, generation["id"], None)
    render = start(alice, plain["id"])
    response = alice.get(f"/v1/generations/{plain['id']}")
    assert response.json()["latest_render"]["id"] == render["id"]
    assert response.content == expected(services, plain["id"], response.json()["latest_render"])
    assert json.loads(response.content)["animation_props"]["text"] == "plain"


def test_a_row_of_an_earlier_revision_reads_with_the_defaults(
    alice: Api, services: Services
) -> None:
    """Rows stored before ``width``/``height`` (and with another key order) read as before."""
    generation = made(alice, text="old row")
    older = {"text": "old row", "style": "fade-in", "color": "#FFFFFF", "duration_in_frames": 90}
    with services.db.transaction() as session:
        session.execute(
            text("UPDATE generations SET animation_props = :props WHERE id = :id"),
            {"props": json.dumps(older), "id": generation["id"]},
        )
    response = alice.get(f"/v1/generations/{generation['id']}")
    assert response.status_code == 200
    assert response.content == expected(services, generation["id"], None)
    props = response.json()["animation_props"]
    assert (props["width"], props["height"], props["duration_in_frames"]) == (1920, 1080, 90)


def test_newest_render_is_the_generations_among_many_of_the_user(
    alice: Api, services: Services, clock: FakeClock
) -> None:
    wanted, other = made(alice, text="wanted"), made(alice, text="other")
    first = start(alice, wanted["id"])
    clock.advance(1000)
    newest = start(alice, wanted["id"])
    for _ in range(20):  # the user's newer renders are all of another generation
        clock.advance(1000)
        start(alice, other["id"])
    one = alice.get(f"/v1/generations/{wanted['id']}").json()
    assert one["latest_render"]["id"] == newest["id"] != first["id"]
    assert (
        alice.get(f"/v1/generations/{other['id']}").json()["latest_render"]["generation_id"]
        == (other["id"])
    )


def test_newest_render_is_found_through_by_generation(sqlite_template: Path) -> None:
    """SQLite's plan (PostgreSQL plans by its own statistics): a search of ``by_generation``."""
    engine = create_engine(f"sqlite:///{sqlite_template}")
    statement = stored._WITH_NEWEST_RENDER.compile(engine)
    names = statement.positiontup or ()
    values = tuple({"generation_id": "x", "user_id": "y"}.get(name, 1) for name in names)
    plan = sqlite_plan(engine, str(statement), values)
    engine.dispose()
    assert "USING INDEX by_generation" in plan, plan
    assert "by_user" not in plan, plan


def test_another_users_render_row_is_never_the_latest(alice: Api, services: Services) -> None:
    generation = made(alice, text="mine")
    render = start(alice, generation["id"])
    bob = Api(alice.app, "bob", alice.client)
    assert bob.get("/v1/generations").status_code == 200  # bob's user row exists
    with services.db.transaction() as session:  # a row no start would write: bob's, on it
        bob_id = session.execute(
            text("SELECT id FROM users WHERE token_identifier = 'renderlab|bob'")
        ).scalar()
        session.execute(
            text("UPDATE renders SET user_id = :bob, created_at = created_at + 10 WHERE id = :id"),
            {"bob": bob_id, "id": render["id"]},
        )
    one = alice.get(f"/v1/generations/{generation['id']}").json()
    assert one["latest_render"] is None
