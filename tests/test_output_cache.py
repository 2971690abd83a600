"""The output cache: a render identical to an earlier complete render of the same user
completes from its output at start, with no render; anything that changes the files misses.

The first render is finished through the lifecycle with real files in real local storage
(a video and a poster), as a worker finishes it; one test renders for real in the embedded
pool and compares the bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from renderlab import store
from renderlab.config import Settings
from renderlab.db import Database
from renderlab.limits import Limits
from renderlab.pipeline import lifecycle
from renderlab.pipeline.actions import signed_urls
from renderlab.pipeline.start import QuotaExceeded, RenderRequest, start_render
from renderlab.services import Services
from renderlab.storage import keys
from tests.api_helpers import Api, attach_local_storage, make_api
from tests.factories import make_generation, make_user
from tests.pipeline_helpers import (
    FAST_LIMITS,
    QUICK_PROPS,
    SMALL,
    embedded,
    fetch_video,
    full_row,
    pipeline_services,
    read,
    remaining_quota,
    wait_for,
)

QUICK_PROPS_FULL = {**QUICK_PROPS, "text": "Hello", "color": "#FFFFFF"}


class Dispatched:
    """A dispatcher that only records: what was handed to the workers."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def dispatch(self, render_id: str) -> None:
        self.ids.append(render_id)


@pytest.fixture
def svc(services: Services) -> Services:
    attach_local_storage(services)
    services.dispatcher = Dispatched()
    return services


def finish_as_a_worker(services: Services, render_id: str, tmp_path: Path) -> tuple[str, str]:
    """Claim the render and complete it with a stored video and poster, as a worker does."""
    lifecycle.claim(services, render_id, owner="w", job_id="j")
    video, poster = tmp_path / f"{render_id}.mp4", tmp_path / f"{render_id}.png"
    video.write_bytes(b"video bytes of " + render_id.encode())
    poster.write_bytes(b"poster bytes of " + render_id.encode())
    output_key, poster_key = keys.output_key(render_id), keys.poster_key(render_id)
    size = services.storage.put_file(output_key, video, "video/mp4")
    services.storage.put_file(poster_key, poster, "image/png")
    lifecycle.complete(
        services, render_id, "w", output_key=output_key, output_size=size, poster_key=poster_key
    )
    return output_key, poster_key


def first_complete(svc: Services, tmp_path: Path, **request: Any) -> tuple[str, str, str]:
    """(user, generation, render id) of a render started and completed by a worker."""
    user = make_user(svc.db)
    generation = make_generation(svc.db, user, **QUICK_PROPS)
    render, _ = start_render(svc, user, RenderRequest(generation, **{**SMALL, **request}))
    finish_as_a_worker(svc, render.id, tmp_path)
    return user, generation, render.id


def test_a_repeat_completes_at_start_from_the_same_files_with_its_own_urls(
    svc: Services, tmp_path: Path
) -> None:
    user, generation, first_id = first_complete(svc, tmp_path)
    assert svc.dispatcher.ids == [first_id]
    again, created = start_render(svc, user, RenderRequest(generation, **SMALL))
    assert created and again.id != first_id
    assert (again.status, again.progress, again.error) == ("complete", 100, None)
    assert svc.dispatcher.ids == [first_id], "a cache hit is not rendered"
    first, second = full_row(svc.db, first_id), full_row(svc.db, again.id)
    assert second["output_key"] == first["output_key"]
    assert second["poster_key"] == first["poster_key"]
    assert second["output_size"] == first["output_size"]
    assert second["completed_at"] is not None and second["attempts"] == 0
    first_urls = signed_urls(svc, read(svc.db, first_id))
    urls = signed_urls(svc, read(svc.db, again.id))
    assert urls.output_url and urls.poster_url
    assert urls.poster_url != first_urls.poster_url and again.id in urls.poster_url
    assert remaining_quota(svc, user) == 3, "both renders count against the quota"


def test_a_hit_still_needs_quota(svc: Services, tmp_path: Path) -> None:
    user, generation, _ = first_complete(svc, tmp_path)
    for _ in range(svc.limits.renders_per_hour - 1):
        assert start_render(svc, user, RenderRequest(generation, **SMALL))[0].status == "complete"
    with pytest.raises(QuotaExceeded):
        start_render(svc, user, RenderRequest(generation, **SMALL))


@pytest.mark.parametrize(
    "change",
    [
        {"codec": "vp9"},
        {"width": 640, "height": 360},
        {"poster_frame": 3},
    ],
)
def test_another_codec_size_or_poster_frame_misses(
    svc: Services, tmp_path: Path, change: dict[str, Any]
) -> None:
    user, generation, first_id = first_complete(svc, tmp_path)
    other, _ = start_render(svc, user, RenderRequest(generation, **{**SMALL, **change}))
    assert other.status == "pending"
    assert svc.dispatcher.ids == [first_id, other.id]


def test_the_default_poster_frame_is_the_last_frame(svc: Services, tmp_path: Path) -> None:
    last = QUICK_PROPS["duration_in_frames"] - 1
    user, generation, _ = first_complete(svc, tmp_path)
    again, _ = start_render(svc, user, RenderRequest(generation, **SMALL, poster_frame=last))
    assert again.status == "complete"


def test_other_props_miss_and_equal_props_of_another_generation_hit(
    svc: Services, tmp_path: Path
) -> None:
    user, _, first_id = first_complete(svc, tmp_path)
    other_text = make_generation(svc.db, user, **{**QUICK_PROPS, "text": "Something else"})
    missed, _ = start_render(svc, user, RenderRequest(other_text, **SMALL))
    assert missed.status == "pending"
    same_props = make_generation(svc.db, user, **QUICK_PROPS)
    hit, _ = start_render(svc, user, RenderRequest(same_props, **SMALL))
    assert hit.status == "complete"
    assert full_row(svc.db, hit.id)["output_key"] == full_row(svc.db, first_id)["output_key"]


def test_another_users_identical_request_misses(svc: Services, tmp_path: Path) -> None:
    first_complete(svc, tmp_path)
    bob = make_user(svc.db, "bob")
    generation = make_generation(svc.db, bob, **QUICK_PROPS)
    render, _ = start_render(svc, bob, RenderRequest(generation, **SMALL))
    assert render.status == "pending"


def test_an_expired_output_or_an_unfinished_render_is_no_hit(svc: Services, tmp_path: Path) -> None:
    user, generation, first_id = first_complete(svc, tmp_path)
    with svc.db.transaction() as session:
        store.update(session, first_id, now=svc.clock(), output_expired=True)
    expired, _ = start_render(svc, user, RenderRequest(generation, **SMALL))
    assert expired.status == "pending", "an expired output is not reused"
    pending_twin, _ = start_render(svc, user, RenderRequest(generation, **SMALL))
    assert pending_twin.status == "pending", "a render still pending is not an output"


def test_a_hit_runs_the_end_hooks_in_its_transaction(
    svc: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ended: list[tuple[str, str | None]] = []

    def record(session: Any, services: Any, render: Any, outcome: Any) -> None:
        ended.append((render.status, outcome.output_key))

    monkeypatch.setattr(lifecycle, "AT_END", [*lifecycle.AT_END, record])
    user, generation, _ = first_complete(svc, tmp_path)
    again, _ = start_render(svc, user, RenderRequest(generation, **SMALL))
    assert len(ended) == 2 and ended[1] == ("complete", full_row(svc.db, again.id)["output_key"])


def test_the_render_object_of_a_hit_over_the_api(svc: Services, tmp_path: Path) -> None:
    app = make_api(svc)
    api = Api(app, "carol")
    generation = api.post("/v1/generations", json={"animation_props": QUICK_PROPS_FULL}).json()
    body = {"generation_id": generation["id"], **SMALL}
    first = api.post("/v1/renders", json=body).json()
    finish_as_a_worker(svc, first["id"], tmp_path)
    second = api.post("/v1/renders", json=body)
    assert second.status_code == 202, second.text
    render = second.json()
    assert render["status"] == "complete" and render["id"] != first["id"]
    assert render["output_url"] and render["poster_url"]
    video = api.client.get(render["output_url"])
    assert video.status_code == 200 and video.content == b"video bytes of " + first["id"].encode()


def test_a_rendered_video_is_served_again_byte_for_byte(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    services = pipeline_services(settings, db, Limits(**FAST_LIMITS))
    user = make_user(db)
    generation = make_generation(db, user, **QUICK_PROPS)
    with embedded(services, workers=1):
        first, _ = start_render(services, user, RenderRequest(generation, **SMALL))
        wait_for(lambda: read(db, first.id).status == "complete")
        again, _ = start_render(services, user, RenderRequest(generation, **SMALL))
    assert again.status == "complete"
    one = fetch_video(services, read(db, first.id), tmp_path / "one.mp4").read_bytes()
    two = fetch_video(services, read(db, again.id), tmp_path / "two.mp4").read_bytes()
    assert one == two and len(one) > 1000


def test_only_complete_renders_carry_their_key(svc: Services, tmp_path: Path) -> None:
    user, generation, first_id = first_complete(svc, tmp_path)
    pending, _ = start_render(svc, user, RenderRequest(generation, **SMALL, codec="vp9"))
    lifecycle.cancel(svc, user, pending.id)
    key = full_row(svc.db, first_id)["cache_key"]
    assert key is not None and len(key) == 64
    assert full_row(svc.db, pending.id)["cache_key"] is None, "a failed render is no output"
