"""The operational edges of every response: ``X-Request-ID`` (the client's when sane, else a
new one) and ``Cache-Control: no-store`` on everything under ``/v1`` that carries a token or a
signed URL, while responses with a policy of their own keep it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from renderlab import store
from renderlab.api.observe import no_store
from renderlab.services import Services
from tests.api_helpers import Api, attach_local_storage, make_api
from tests.factories import PROPS
from tests.metrics_helpers import value


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [
        ("client-id-1", True),
        ("0f8fad5b-d9cb-469f-a165-70867728950e", True),
        ("a" * 128, True),
        ("a" * 129, False),
        ("two words", False),
        ("<script>", False),
        ("", False),
    ],
)
def test_request_id_is_echoed_when_sane_else_new(
    services: Services, sent: str, echoed: bool
) -> None:
    api = Api(make_api(services), "alice")
    answer = api.get("/v1/quota", headers={"X-Request-ID": sent})
    got = answer.headers["x-request-id"]
    assert (got == sent) is echoed
    if not echoed:
        assert len(got) == 32 and got.isalnum()


def test_request_id_on_refusals_outside_the_routes(services: Services) -> None:
    api = Api(make_api(services), "alice")
    too_large = api.post(
        "/v1/generations", content=b"x" * 70_000, headers={"X-Request-ID": "big-one"}
    )
    assert too_large.status_code == 413
    assert too_large.headers["x-request-id"] == "big-one"
    two = [api.client.get("/healthz").headers["x-request-id"] for _ in range(2)]
    assert two[0] != two[1]


def test_responses_with_tokens_or_signed_urls_are_not_stored(services: Services) -> None:
    attach_local_storage(services)
    api = Api(make_api(services), "alice")
    token = api.client.post("/v1/auth/token", json={"name": "alice"})
    assert token.headers["cache-control"] == "no-store"
    generation = api.post("/v1/generations", json={"animation_props": PROPS}).json()
    body = {"generation_id": generation["id"], "width": 320, "height": 180}
    started = api.post("/v1/renders", json=body)
    render_id = started.json()["id"]
    with services.db.transaction() as session:
        now = services.clock()
        store.update(session, render_id, now=now, status="rendering", progress=50)
        store.update(
            session, render_id, now=now, status="complete", output_key=f"renders/{render_id}.mp4"
        )
    video = services.settings.data_path / "video.mp4"
    video.write_bytes(b"a stored output")  # download-url is a 410 when the object is gone
    services.storage.put_file(f"renders/{render_id}.mp4", video, "video/mp4")
    answers = {
        "start": started,
        "read": api.get(f"/v1/renders/{render_id}"),
        "list": api.get("/v1/renders"),
        "generation": api.get(f"/v1/generations/{generation['id']}"),
        "download-url": api.post(f"/v1/renders/{render_id}/download-url"),
        "error": api.get("/v1/renders/nope"),
    }
    assert answers["read"].json()["output_url"]  # a signed URL it is
    for name, answer in answers.items():
        assert answer.headers["cache-control"] == "no-store", name
    with api.client.stream("GET", f"/v1/renders/{render_id}/events", headers=api.headers) as sse:
        assert sse.headers["cache-control"] == "no-store"
    still = api.get(f"/v1/generations/{generation['id']}/still?width=320&height=180")
    assert still.headers["cache-control"].startswith("private, max-age=")  # its own, kept
    assert "cache-control" not in api.client.get("/healthz").headers


def test_no_store_keeps_a_stronger_policy_and_leaves_other_bodies_alone() -> None:
    json_type = (b"content-type", b"application/json")
    assert no_store([json_type]) == [json_type, (b"cache-control", b"no-store")]
    private = [json_type, (b"cache-control", b"private, max-age=60")]
    assert no_store(private) == private
    png = [(b"content-type", b"image/png")]
    assert no_store(png) == png


def test_a_crash_still_answers_with_its_request_id_and_is_counted(services: Services) -> None:
    app = make_api(services)

    def explode() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/v1/explode", explode)
    client = TestClient(app, raise_server_exceptions=False)
    before = client.get("/metrics").text
    crashed = client.get("/v1/explode", headers={"X-Request-ID": "crash-1"})
    assert crashed.status_code == 500
    assert crashed.headers["x-request-id"] == "crash-1"
    labels = {"route": "/v1/explode", "method": "GET", "status": "500"}
    after = client.get("/metrics").text
    was = value(before, "renderlab_http_requests_total", **labels)
    assert value(after, "renderlab_http_requests_total", **labels) == was + 1
