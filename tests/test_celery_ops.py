"""Deletion and retention in the cluster layout: PostgreSQL, Redis, two ``renderlab worker``
processes and S3 (moto on loopback), over HTTP. A render deleted while its chunks are being
encoded leaves nothing in the bucket (a late worker removes what it stored); a complete one's
video and poster go with it; the workers' reconciler expires outputs past ``expires_at``."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import update

from renderlab.models import Render
from renderlab.services import Services
from tests.api_helpers import Api, make_api
from tests.factories import PROPS
from tests.pipeline_helpers import full_row, wait_for
from tests.test_celery_cluster import LONG_TEXT, Cluster, _chunks, cluster  # noqa: F401

SIZE = {"width": 1280, "height": 720}


def objects_of(services: Services, render_id: str) -> list[str]:
    """Every key in the bucket that names the render (video, poster, segments)."""
    storage: Any = services.storage
    listed = storage.client.list_objects_v2(Bucket=storage.bucket_name)
    return [item["Key"] for item in listed.get("Contents", []) if render_id in item["Key"]]


def start(api: Api) -> str:
    props = {**PROPS, "text": LONG_TEXT, "style": "typewriter", "duration_in_frames": 600}
    generation = api.post("/v1/generations", json={"animation_props": props}).json()
    started = api.post("/v1/renders", json={"generation_id": generation["id"], **SIZE})
    assert started.status_code == 202, started.text
    return started.json()["id"]


def complete(services: Services, render_id: str) -> dict[str, Any]:
    row = wait_for(
        lambda: (r := full_row(services.db, render_id))["status"] in ("complete", "failed") and r,
        timeout=120,
        interval=0.05,
    )
    assert row["status"] == "complete", row["error"]
    return row


def test_delete_over_http_removes_s3_objects_even_mid_render(cluster: Cluster) -> None:  # noqa: F811
    services = cluster.services
    api = Api(make_api(services), "cluster-deleter")
    running = start(api)
    wait_for(lambda: any(c.status == "complete" for c in _chunks(services, running)), timeout=90)
    assert objects_of(services, running)  # a segment is in the bucket
    deleted = api.client.delete(f"/v1/renders/{running}", headers=api.headers)
    assert deleted.status_code == 204, deleted.text
    assert api.get(f"/v1/renders/{running}").status_code == 404
    # Chunks still encoding finish, find the render gone, and remove their segments.
    wait_for(lambda: not objects_of(services, running), timeout=90, interval=0.2)

    done = start(api)
    row = complete(services, done)
    assert row["output_key"] in objects_of(services, done)
    url = api.get(f"/v1/renders/{done}").json()["output_url"]
    assert httpx.get(url).status_code == 200  # a real presigned S3 URL
    assert api.client.delete(f"/v1/renders/{done}", headers=api.headers).status_code == 204
    assert objects_of(services, done) == []
    gone = httpx.get(url)
    # The object is gone; what a presigned GET of a missing key answers is the S3 server's
    # choice (AWS: 404 with list permission, else 403; moto: 403). Never the video again.
    assert gone.status_code in (403, 404), gone.text


def test_the_workers_reconciler_expires_outputs_on_s3(cluster: Cluster) -> None:  # noqa: F811
    services = cluster.services
    api = Api(make_api(services), "cluster-keeper")
    render_id = start(api)
    row = complete(services, render_id)
    assert row["expires_at"] == row["completed_at"] + services.limits.output_ttl_s * 1000
    assert row["output_key"] in objects_of(services, render_id)
    with services.db.transaction() as session:  # as if 30 days had passed
        session.execute(update(Render).where(Render.id == render_id).values(expires_at=1))

    wait_for(lambda: full_row(services.db, render_id)["output_expired"], timeout=60)
    # (The objects go right after the reconciler's commit.)
    wait_for(lambda: not objects_of(services, render_id), timeout=30, interval=0.1)
    answer = api.post(f"/v1/renders/{render_id}/download-url")
    assert answer.status_code == 410
    assert answer.json()["error"]["code"] == "output_expired"
    assert api.get(f"/v1/renders/{render_id}").json()["output_url"] is None
