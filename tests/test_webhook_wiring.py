"""Webhooks wired into renders, on real SQLite and PostgreSQL through the real app: the submit
checks (``webhook_url``, ``metadata``), one-request renders, the outbox row written by the
render's ending transaction, its delivery to a real receiver on 127.0.0.1 with the render
object exactly as ``GET /v1/renders/{id}`` answers it, and the deliveries route."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook

from renderlab.limits import Limits
from renderlab.pipeline import lifecycle
from renderlab.pipeline.webhook_outbox import refresher
from renderlab.pipeline.webhook_sender import WebhookSender
from renderlab.services import Services
from renderlab.webhooks import make_event
from renderlab.webhooks.loop import delivery_config
from renderlab.webhooks.outbox import deliver_due, enqueue
from tests.api_helpers import Api, attach_local_storage, make_api, user_id_of
from tests.conftest import FakeClock
from tests.factories import PROPS, make_generation
from tests.metrics_helpers import value
from tests.pipeline_helpers import wait_for
from tests.webhook_helpers import receiver

SIZE = {"width": 320, "height": 180}
PER_HOUR = 3


@pytest.fixture
def limits() -> Limits:
    return Limits(
        renders_per_hour=PER_HOUR, max_concurrent_renders=10, webhook_retry_schedule_s="5,300"
    )


@pytest.fixture
def api(services: Services) -> Api:
    """Alice's client of an app whose services may send webhooks to loopback."""
    services.settings = services.settings.model_copy(update={"webhook_allow_private": True})
    attach_local_storage(services)
    return Api(make_api(services), "alice")


def _deliver(services: Services, owner: str = "test") -> int:
    config = delivery_config(services.settings, services.limits)
    return asyncio.run(
        deliver_due(services.db.transaction, owner, config, services.clock, refresher(services))
    )


def _secret(services: Services) -> str:
    return delivery_config(services.settings, services.limits).secret


def _remaining(api: Api) -> int:
    return int(api.get("/v1/quota").json()["remaining"])


def _generations(api: Api) -> int:
    return len(api.get("/v1/generations", params={"limit": 100}).json()["items"])


def _end(services: Services, render_id: str) -> None:
    """A worker claims the render and completes it with a (pretend) stored output."""
    assert lifecycle.claim(services, render_id, owner="w1", job_id="job-1") is not None
    lifecycle.complete(
        services, render_id, "w1", output_key=f"renders/{render_id}.mp4", output_size=1234
    )


def _fields(answer: Any) -> list[str]:
    return [field["field"] for field in answer.json()["error"].get("fields", [])]


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9/hook", "http://[::ffff:10.0.0.1]/", "http://169.254.169.254/", "ftp://x/"],
)
def test_a_private_webhook_url_is_refused_at_submit_and_costs_nothing(
    services: Services, url: str
) -> None:
    attach_local_storage(services)
    api = Api(make_api(services), "alice")
    before = _remaining(api)
    answer = api.post("/v1/renders", json={"animation_props": PROPS, "webhook_url": url, **SIZE})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "invalid_webhook_url"
    assert _fields(answer) == ["webhook_url"]
    assert _remaining(api) == before and _generations(api) == 0


def test_the_allowance_lets_a_loopback_receiver_in(api: Api) -> None:
    body = {"animation_props": PROPS, "webhook_url": "http://127.0.0.1:9/hook", **SIZE}
    answer = api.post("/v1/renders", json=body)
    assert answer.status_code == 202, answer.text
    assert answer.json()["webhook_url"] == "http://127.0.0.1:9/hook"


@pytest.mark.parametrize(
    "metadata",
    [["a", "list"], "text", {"blob": "x" * 1020}],
    ids=["list", "string", "over-1-KiB"],
)
def test_metadata_must_be_a_json_object_of_at_most_1_kib(api: Api, metadata: Any) -> None:
    before = _remaining(api)
    answer = api.post("/v1/renders", json={"animation_props": PROPS, "metadata": metadata, **SIZE})
    assert answer.status_code == 422, answer.text
    assert _fields(answer) == ["metadata"]
    assert _remaining(api) == before


def test_metadata_of_exactly_1_kib_is_stored_and_echoed(api: Api) -> None:
    metadata = {"blob": "x" * (1024 - len('{"blob":""}'))}
    answer = api.post("/v1/renders", json={"animation_props": PROPS, "metadata": metadata, **SIZE})
    assert answer.status_code == 202, answer.text
    assert api.get(answer.headers["Location"]).json()["metadata"] == metadata


def test_one_request_renders_new_props_and_stores_the_generation(api: Api) -> None:
    body = {"animation_props": PROPS, "prompt": "say hello", **SIZE}
    render = api.post("/v1/renders", json=body).json()
    generation = api.get(f"/v1/generations/{render['generation_id']}").json()
    assert generation["prompt"] == "say hello"
    assert generation["animation_props"]["text"] == PROPS["text"]
    assert generation["latest_render"]["id"] == render["id"]
    assert (render["status"], render["width"], render["fps"]) == ("pending", 320, 30)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"generation_id": "G"}, "generation_id"),  # both
        ({"animation_props": None}, "generation_id"),  # neither
        ({"animation_props": None, "generation_id": "G", "prompt": "p"}, "prompt"),
        ({"animation_props": {**PROPS, "color": "white"}}, "animation_props.color"),
        ({"animation_props": {**PROPS, "text": 7}}, "animation_props.text"),
    ],
    ids=["both", "neither", "prompt-without-props", "bad-color", "text-not-a-string"],
)
def test_one_of_generation_id_and_animation_props_with_valid_props(
    api: Api, services: Services, extra: dict[str, Any], field: str
) -> None:
    generation = make_generation(services.db, _alice(api))
    body = {"animation_props": PROPS, **SIZE, **extra}
    if body.get("generation_id") == "G":
        body["generation_id"] = generation
    if body["animation_props"] is None:
        del body["animation_props"]
    before = _remaining(api)
    answer = api.post("/v1/renders", json=body)
    assert answer.status_code == 422, answer.text
    assert _fields(answer) == [field]
    assert _remaining(api) == before and _generations(api) == 1


def _alice(api: Api) -> str:
    return user_id_of(api.app, "alice")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"width": 7680, "height": 4320}, 422, "resolution_too_large"),
        ({"animation_props": {**PROPS, "duration_in_frames": 100_000}}, 422, None),
        ({"codec": "mpeg1"}, 422, None),
    ],
    ids=["size-cap", "duration-cap", "codec"],
)
def test_a_refused_one_request_render_creates_nothing_and_costs_nothing(
    api: Api, body: dict[str, Any], status: int, code: str | None
) -> None:
    before = _remaining(api)
    answer = api.post("/v1/renders", json={"animation_props": PROPS, **SIZE, **body})
    assert answer.status_code == status, answer.text
    if code is not None:
        assert answer.json()["error"]["code"] == code
    assert _remaining(api) == before and _generations(api) == 0


def test_a_one_request_render_over_the_quota_creates_no_generation(api: Api) -> None:
    for _ in range(PER_HOUR):
        assert api.post("/v1/renders", json={"animation_props": PROPS, **SIZE}).status_code == 202
    refused = api.post("/v1/renders", json={"animation_props": PROPS, **SIZE})
    assert refused.status_code == 429
    assert _generations(api) == PER_HOUR and _remaining(api) == 0


def test_the_completed_webhook_is_the_render_object_get_answers(
    api: Api, services: Services
) -> None:
    with receiver() as hook:
        body = {"animation_props": PROPS, "webhook_url": hook.url, "metadata": {"order": 7}}
        render = api.post("/v1/renders", json={**body, **SIZE}).json()
        assert _deliver(services) == 0  # nothing until the render ends
        _end(services, render["id"])
        assert _deliver(services) == 1
    (request,) = hook.requests
    event = Webhook(_secret(services)).verify(request.body, request.headers)
    assert event["type"] == "render.completed"
    assert event["data"] == api.get(f"/v1/renders/{render['id']}").json()
    assert event["data"]["metadata"] == {"order": 7} and event["data"]["output_url"]


def test_cancel_sends_render_failed_with_error_code_cancelled(api: Api, services: Services) -> None:
    with receiver() as hook:
        body = {"animation_props": PROPS, "webhook_url": hook.url, "metadata": {"k": "v"}}
        render = api.post("/v1/renders", json={**body, **SIZE}).json()
        assert api.post(f"/v1/renders/{render['id']}/cancel").status_code == 200
        assert _deliver(services) == 1
    event = Webhook(_secret(services)).verify(hook.requests[0].body, hook.requests[0].headers)
    assert event["type"] == "render.failed"
    assert (event["data"]["status"], event["data"]["error_code"]) == ("failed", "cancelled")
    assert event["data"]["metadata"] == {"k": "v"} and event["data"]["output_url"] is None


def test_a_render_without_webhook_url_enqueues_nothing(api: Api, services: Services) -> None:
    render = api.post("/v1/renders", json={"animation_props": PROPS, **SIZE}).json()
    _end(services, render["id"])
    with services.db.session() as session:
        assert session.execute(sa.text("SELECT count(*) FROM webhook_events")).scalar() == 0


def test_an_event_rolls_back_with_a_failed_ending(api: Api, services: Services) -> None:
    """The event is in the ending transaction: an end that does not commit sends nothing."""

    def broken(*_args: object) -> None:
        raise RuntimeError("a later hook fails")

    body = {"animation_props": PROPS, "webhook_url": "http://127.0.0.1:9/", **SIZE}
    render = api.post("/v1/renders", json=body).json()
    lifecycle.AT_END.append(broken)
    try:
        with pytest.raises(RuntimeError):
            lifecycle.cancel(services, _alice(api), render["id"])
    finally:
        lifecycle.AT_END.remove(broken)
    assert api.get(f"/v1/renders/{render['id']}").json()["status"] == "pending"
    with services.db.session() as session:
        assert session.execute(sa.text("SELECT count(*) FROM webhook_events")).scalar() == 0


def test_a_receiver_failing_twice_gets_three_attempts_listed_newest_first(
    api: Api, services: Services, clock: FakeClock
) -> None:
    before = api.client.get("/metrics").text
    with receiver([500, 503]) as hook:
        body = {"animation_props": PROPS, "webhook_url": hook.url}
        render = api.post("/v1/renders", json={**body, **SIZE}).json()
        _end(services, render["id"])
        for step_ms in (0, 5_000, 300_000):  # the schedule "5,300"
            clock.advance(step_ms)
            assert _deliver(services) == 1
            assert _deliver(services) == 0  # not due again before its time
    secret = _secret(services)
    assert [Webhook(secret).verify(r.body, r.headers)["type"] for r in hook.requests] == [
        "render.completed"
    ] * 3
    (event_id,) = {r.headers["webhook-id"] for r in hook.requests}
    listed = api.get(f"/v1/renders/{render['id']}/webhook-deliveries").json()["items"]
    assert [(d["attempt"], d["status_code"], d["error"]) for d in listed] == [
        (3, 200, None),
        (2, 503, "HTTP 503"),
        (1, 500, "HTTP 500"),
    ]
    assert {(d["event_id"], d["type"]) for d in listed} == {(event_id, "render.completed")}
    assert listed[0]["at"] > listed[1]["at"] > listed[2]["at"]
    after = api.client.get("/metrics").text
    for outcome, more in (("retrying", 2), ("delivered", 1)):
        name, labels = "renderlab_webhook_deliveries_total", {"outcome": outcome}
        assert value(after, name, **labels) == value(before, name, **labels) + more
    bob = Api(api.app, "bob", api.client)
    assert bob.get(f"/v1/renders/{render['id']}/webhook-deliveries").status_code == 404


def test_two_senders_on_one_database_make_each_attempt_once(services: Services) -> None:
    services.settings = services.settings.model_copy(update={"webhook_allow_private": True})
    count = 30
    with receiver() as hook:
        with services.db.transaction() as session:
            for index in range(count):
                event = make_event("render.failed", {"id": str(index)}, services.clock())
                enqueue(session, event, render_id=f"R{index}", user_id="U", url=hook.url, now=0)
        senders = [WebhookSender(services, interval_s=0.02) for _ in range(2)]
        for sender in senders:
            sender.start()
        try:
            wait_for(lambda: _delivered(services) == count, timeout=60)
        finally:
            for sender in senders:
                sender.stop()
    ids = [r.headers["webhook-id"] for r in hook.requests]
    assert len(ids) == count and len(set(ids)) == count
    with services.db.session() as session:
        rows = session.execute(sa.text("SELECT count(*) FROM webhook_deliveries")).scalar()
    assert rows == count


def _delivered(services: Services) -> int:
    with services.db.session() as session:
        statement = sa.text("SELECT count(*) FROM webhook_events WHERE status = 'delivered'")
        return int(session.execute(statement).scalar() or 0)


def test_a_one_request_render_over_the_cost_budget_creates_nothing(services: Services) -> None:
    services.limits = Limits(render_cost_budget_ms=100)
    attach_local_storage(services)
    api = Api(make_api(services), "alice")
    before = _remaining(api)
    heavy = {**PROPS, "style": "typewriter", "text": "typed " * 80, "duration_in_frames": 600}
    answer = api.post("/v1/renders", json={"animation_props": heavy, "width": 1920, "height": 1080})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "render_too_costly"
    assert _remaining(api) == before and _generations(api) == 0
