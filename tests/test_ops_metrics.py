"""``GET /metrics``: Prometheus text with HTTP requests by route template, the render queue read
from the database, and counts that add up over processes (``serve --processes 2``, short-lived
render processes whose files are compacted)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from renderlab import metrics_dir
from renderlab.api import create_app
from renderlab.limits import Limits
from renderlab.metrics_dir import CompactingCollector
from renderlab.services import Services
from tests.api_helpers import Api
from tests.factories import PROPS, make_generation, make_render, make_user
from tests.metrics_helpers import value
from tests.serve_helpers import serve


def test_metrics_count_requests_by_route_template_and_read_the_queue(services: Services) -> None:
    app = create_app(services)
    api = Api(app, "alice")
    user = make_user(services.db, "bob")
    generation = make_generation(services.db, user)
    for _ in range(3):
        make_render(services.db, user, generation)  # pending: nobody dispatches them here
    before = api.client.get("/metrics").text
    for render_id in ("01AAAAAAAAAAAAAAAAAAAAAAAA", "01BBBBBBBBBBBBBBBBBBBBBBBB"):
        assert api.get(f"/v1/renders/{render_id}").status_code == 404
    assert api.client.get("/no/such/path").status_code == 404
    scrape = api.client.get("/metrics")  # no token needed
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    text = scrape.text
    route = {"route": "/v1/renders/{id}", "method": "GET", "status": "404"}
    assert value(text, "renderlab_http_requests_total", **route) == (
        value(before, "renderlab_http_requests_total", **route) + 2
    )
    assert "01AAAAAAAAAAAAAAAAAAAAAAAA" not in text  # never the raw path
    assert value(text, "renderlab_http_requests_total", route="unmatched", method="GET",
                 status="404") >= 1  # fmt: skip
    assert value(text, "renderlab_queue_depth") == 3
    assert value(text, "renderlab_oldest_pending_render_age_seconds") >= 0
    assert value(text, "renderlab_renders_in_progress") == 0


def test_metrics_can_be_turned_off(services: Services) -> None:
    services.settings = services.settings.model_copy(update={"metrics": False})
    client = TestClient(create_app(services), raise_server_exceptions=False)
    answer = client.get("/metrics")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


def test_metrics_add_up_over_two_serve_processes(tmp_path: Path) -> None:
    """Requests on connections of their own land on either process; every scrape, whichever
    process answers it, counts them all. Rounds of 20 are sent until both processes have
    answered (the kernel may give a busy machine's first connections all to one, or to the
    first process listening), then each of six scrapes must count every one."""
    with serve(tmp_path / "data", "--processes", "2", RENDERLAB_WORKERS="2") as server:
        token = httpx.post(f"{server.base}/v1/auth/token", json={"name": "alice"}).json()
        headers = {"Authorization": f"Bearer {token['token']}"}

        def quota(_: int) -> int:
            return httpx.get(f"{server.base}/v1/quota", headers=headers).status_code

        root = metrics_dir.directory_for(tmp_path / "data", "x").parent
        sent, deadline = 0, time.monotonic() + 60
        files: set[str] = set()
        while len(files) < 2 and time.monotonic() < deadline:
            with ThreadPoolExecutor(8) as pool:
                assert set(pool.map(quota, range(20))) == {200}
            sent += 20
            files = {p.name for p in root.rglob("counter_*.db")}
        assert len(files) == 2, files  # one per API process: both answered and both count
        counted = set()
        for _ in range(6):
            scrape = httpx.get(f"{server.base}/metrics")
            counted.add(value(scrape.text, "renderlab_http_requests_total",
                              route="/v1/quota", method="GET", status="200"))  # fmt: skip
        assert counted == {float(sent)}


_RECORD_ONE_RENDER = """
from renderlab import metrics
metrics.render_started("h264", queue_wait_s=0.2)
metrics.render_finished("complete", "h264", duration_s=1.5)
"""


def test_counts_of_finished_processes_are_kept_and_their_files_compacted(tmp_path: Path) -> None:
    """An embedded render runs in a process of its own: five such processes later, the counts
    are all there and the directory holds archives, not a file per process."""
    directory = tmp_path / "metrics"
    directory.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    for _ in range(5):
        subprocess.run([sys.executable, "-c", _RECORD_ONE_RENDER], env=env, check=True)
    assert len(list(directory.glob("counter_*.db"))) == 5
    collector = CompactingCollector(directory)

    def count(name: str) -> float:
        found = [s.value for f in collector.collect() for s in f.samples if s.name == name]
        return sum(found)

    assert count("renderlab_renders_finished_total") == 5
    assert sorted(p.name for p in directory.glob("*.db")) == [
        "counter_archive.db",
        "histogram_archive.db",
    ]
    subprocess.run([sys.executable, "-c", _RECORD_ONE_RENDER], env=env, check=True)
    assert count("renderlab_renders_finished_total") == 6
    assert count("renderlab_render_duration_seconds_count") == 6
    assert count("renderlab_render_queue_wait_seconds_sum") == pytest.approx(6 * 0.2)


def test_quota_refusals_are_counted(services: Services) -> None:
    one_an_hour = Services(
        settings=services.settings, limits=Limits(renders_per_hour=1), db=services.db
    )
    api = Api(create_app(one_an_hour), "alice")
    generation = api.post("/v1/generations", json={"animation_props": PROPS}).json()
    body = {"generation_id": generation["id"], "width": 320, "height": 180}
    before = api.client.get("/metrics").text
    codes = [api.post("/v1/renders", json=body).status_code for _ in range(3)]
    assert codes == [202, 429, 429]
    after = api.client.get("/metrics").text
    was = value(before, "renderlab_quota_refusals_total", reason="rate_limited")
    assert value(after, "renderlab_quota_refusals_total", reason="rate_limited") == was + 2
