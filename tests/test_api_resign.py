"""Reading a complete render hands out a freshly signed URL: the one stored at completion
expires after the TTL, and a page reloaded later must still be able to download."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt

from renderlab import store
from renderlab.limits import Limits
from renderlab.pipeline.claim import lease_owner
from renderlab.pipeline.run import run_render
from renderlab.pipeline.start import RenderRequest, start_render
from renderlab.services import Services
from tests.api_helpers import Api, context, make_api, sse_messages
from tests.conftest import FakeClock
from tests.factories import make_generation
from tests.pipeline_helpers import FAST_LIMITS, QUICK_PROPS, SMALL, pipeline_services


def expires(url: str) -> int:
    return int(parse_qs(urlsplit(url).query)["expires"][0])


def completed(services: Services, clock: FakeClock, tmp_path: Path) -> tuple[Api, str]:
    """An API on the services' fake clock and the id of alice's complete render."""
    svc = pipeline_services(services.settings, services.db, Limits(**FAST_LIMITS), clock=clock)
    api = Api(make_api(svc), "alice")
    user = api.get("/v1/quota")  # creates the user row
    assert user.status_code == 200
    with svc.db.session() as session:
        user_id = store.get_user_by_token(session, api_token_identifier(api)).id
    generation = make_generation(svc.db, user_id, **QUICK_PROPS)
    render, _ = start_render(svc, user_id, RenderRequest(generation, **SMALL))
    token = uuid.uuid4().hex[:8]
    assert run_render(svc, render.id, owner=lease_owner(token), job_id=token, workdir=tmp_path)
    return api, render.id


def test_reads_resign_the_download_url(services: Services, clock: FakeClock, tmp_path: Path):
    api, render_id = completed(services, clock, tmp_path)
    svc = context(api.app).services

    first = api.get(f"/v1/renders/{render_id}").json()["output_url"]
    clock.advance(svc.limits.download_url_ttl_s * 1000 * 2)
    later = api.get(f"/v1/renders/{render_id}").json()["output_url"]
    assert expires(later) - expires(first) == svc.limits.download_url_ttl_s * 2
    listed = api.get("/v1/renders").json()["items"][0]["output_url"]
    assert expires(listed) == expires(later)
    history = api.get("/v1/generations").json()["items"][0]["latest_render"]["output_url"]
    assert expires(history) == expires(later)


def test_an_event_stream_opened_after_the_url_expired_hands_out_a_working_one(
    services: Services, clock: FakeClock, tmp_path: Path
) -> None:
    """The SSE feed signs at send time: it never carries a URL made at completion."""
    api, render_id = completed(services, clock, tmp_path)
    ttl_s = context(api.app).services.limits.download_url_ttl_s
    at_completion = api.get(f"/v1/renders/{render_id}").json()["output_url"]
    clock.advance(ttl_s * 1000 * 2)
    assert api.client.get(at_completion).json()["error"]["code"] == "url_expired"

    with api.client.stream("GET", f"/v1/renders/{render_id}/events", headers=api.headers) as sse:
        event = next(message for message in sse_messages(sse) if message.event == "render")
    url = event.data["output_url"]
    assert expires(url) == clock.now // 1000 + ttl_s
    video = api.client.get(url)
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"


def api_token_identifier(api: Api) -> str:
    token = api.headers["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, options={"verify_signature": False})
    return f"{claims['iss']}|{claims['sub']}"
