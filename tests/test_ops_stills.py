"""Metered still previews: ``RENDERLAB_STILLS_PER_MINUTE`` per user (a token bucket in the
database), 429 ``rate_limited`` with ``Retry-After``, and at most ``RENDERLAB_STILLS_AT_ONCE``
stills drawn at once in one API process."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

import renderlab.render
from renderlab.api import create_app
from renderlab.limits import Limits
from renderlab.services import Services
from tests.api_helpers import Api, bearer, live_server
from tests.conftest import FakeClock
from tests.factories import PROPS
from tests.metrics_helpers import value

SMALL_STILL = {"animation_props": {**PROPS, "duration_in_frames": 30}, "width": 160, "height": 90}


def _with_limits(services: Services, **limits: Any) -> Services:
    services.limits = Limits(**limits)
    return services


def test_stills_are_limited_per_user_with_retry_after(services: Services, clock: FakeClock) -> None:
    app = create_app(_with_limits(services, stills_per_minute=3))
    alice, bob = Api(app, "alice"), Api(app, "bob")
    generation = alice.post("/v1/generations", json={"animation_props": PROPS}).json()
    before = alice.client.get("/metrics").text
    assert alice.post("/v1/stills", json=SMALL_STILL).status_code == 200
    assert alice.post("/v1/stills", json=SMALL_STILL).status_code == 200
    stored = alice.get(f"/v1/generations/{generation['id']}/still?width=160&height=90")
    assert stored.status_code == 200  # both still routes draw from one bucket
    refused = alice.post("/v1/stills", json=SMALL_STILL)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert refused.headers["retry-after"] == "20"  # 3 a minute: one token every 20 s
    assert refused.json()["error"]["retry_after_ms"] == 20_000
    also = alice.get(f"/v1/generations/{generation['id']}/still?width=160&height=90")
    assert also.status_code == 429
    assert bob.post("/v1/stills", json=SMALL_STILL).status_code == 200  # per user
    clock.advance(20_000)
    assert alice.post("/v1/stills", json=SMALL_STILL).status_code == 200
    after = alice.client.get("/metrics").text
    for outcome, more in (("ok", 5), ("rate_limited", 2)):
        was = value(before, "renderlab_stills_total", outcome=outcome)
        assert value(after, "renderlab_stills_total", outcome=outcome) == was + more


def test_an_invalid_still_costs_no_token(services: Services) -> None:
    app = create_app(_with_limits(services, stills_per_minute=1))
    alice = Api(app, "alice")
    bad = {**SMALL_STILL, "frame": 30}  # past the last frame
    assert alice.post("/v1/stills", json=bad).status_code == 422
    assert alice.post("/v1/stills", json=SMALL_STILL).status_code == 200
    assert alice.post("/v1/stills", json=SMALL_STILL).status_code == 429


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_stills_drawn_at_once_are_bounded(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight stills at once over real HTTP with ``stills_at_once=2``: the renderer (the real
    one, counted on its way in) never draws more than two at a time. Each call holds on until
    a third one joins it (or 0.3 s), so without the bound the overlap would show."""
    real = renderlab.render.render_still
    state = {"now": 0, "most": 0}
    changed = threading.Condition()

    def counted(*args: Any) -> bytes:
        with changed:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
            changed.notify_all()
            changed.wait_for(lambda: state["now"] > 2, timeout=0.3)
        try:
            return real(*args)
        finally:
            with changed:
                state["now"] -= 1

    monkeypatch.setattr(renderlab.render, "render_still", counted)
    app = create_app(_with_limits(services, stills_at_once=2))
    headers = bearer(app, "alice")
    with live_server(app) as base:

        def one(_: int) -> int:
            return httpx.post(f"{base}/v1/stills", json=SMALL_STILL, headers=headers,
                              timeout=60).status_code  # fmt: skip

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(one, range(8)))
    assert codes == [200] * 8
    assert state["most"] == 2
