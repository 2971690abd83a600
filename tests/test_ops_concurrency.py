"""The per-user concurrency cap over HTTP (SQLite and PostgreSQL): with two renders pending
or rendering, a third start is a 429 ``too_many_concurrent_renders`` that costs no quota and
is counted; once one of them ends, a new one is admitted. Other users are not held back."""

from __future__ import annotations

from pathlib import Path

from renderlab.services import Services
from tests.api_helpers import Api, attach_local_storage, make_api
from tests.factories import PROPS
from tests.metrics_helpers import value
from tests.ops_helpers import finish, start

REFUSALS = "renderlab_quota_refusals_total"


def test_a_third_render_at_once_is_refused_without_quota(
    services: Services, tmp_path: Path
) -> None:
    attach_local_storage(services)
    alice = Api(make_api(services), "alice")
    bob = Api(alice.app, "bob", alice.client)
    first, second = start(alice), start(alice)
    remaining = alice.get("/v1/quota").json()["remaining"]
    before = value(
        alice.client.get("/metrics").text, REFUSALS, reason="too_many_concurrent_renders"
    )

    generation = alice.post("/v1/generations", json={"animation_props": PROPS}).json()
    body = {"generation_id": generation["id"], "width": 320, "height": 180}
    refused = alice.post("/v1/renders", json=body)
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert error["code"] == "too_many_concurrent_renders"
    assert error["limit"] == 2
    assert alice.get("/v1/quota").json()["remaining"] == remaining  # cost nothing
    after = value(alice.client.get("/metrics").text, REFUSALS, reason="too_many_concurrent_renders")
    assert after == before + 1
    assert len(alice.get("/v1/renders").json()["items"]) == 2  # no row either

    assert bob.post("/v1/renders", json=body).status_code == 404  # his own cap, her generation
    start(bob)  # bob is not held back by alice's renders

    finish(services, tmp_path, first["id"])
    assert alice.post("/v1/renders", json=body).status_code == 202
    cancelled = alice.post(f"/v1/renders/{second['id']}/cancel")
    assert cancelled.status_code == 200
    assert alice.post("/v1/renders", json=body).status_code == 202
