"""Starting a render: ownership, caps before quota, quota, idempotency, dispatch after commit."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from renderlab import store
from renderlab.caps import CapError
from renderlab.limits import Limits
from renderlab.models import Render
from renderlab.pipeline.start import (
    IdempotencyConflict,
    QuotaExceeded,
    RenderRequest,
    start_render,
)
from renderlab.quota import quota_status
from renderlab.services import Services
from tests.factories import make_generation, make_user


class RecordingDispatcher:
    """Records what was dispatched and whether another connection could already see it."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.seen: list[tuple[str, str]] = []

    def dispatch(self, render_id: str) -> None:
        with self.services.db.session() as session:
            status = store.get(session, render_id).status
        self.seen.append((render_id, status))


def count_renders(services: Services) -> int:
    with services.db.session() as session:
        return session.execute(select(func.count()).select_from(Render)).scalar_one()


def test_start_creates_pending_render_and_dispatches_after_commit(services: Services) -> None:
    dispatcher = RecordingDispatcher(services)
    services.dispatcher = dispatcher
    user = make_user(services.db)
    generation = make_generation(services.db, user, duration_in_frames=90)
    render, created = start_render(services, user, RenderRequest(generation, 1280, 720))
    assert created
    assert (render.status, render.progress) == ("pending", 0)
    assert (render.width, render.height) == (1280, 720)
    assert (render.fps, render.duration_in_frames, render.codec) == (30, 90, "h264")
    assert dispatcher.seen == [(render.id, "pending")]


def test_defaults_to_the_composition_size(services: Services) -> None:
    user = make_user(services.db)
    render, _ = start_render(services, user, RenderRequest(make_generation(services.db, user)))
    assert (render.width, render.height) == (1920, 1080)


def test_one_side_alone_keeps_the_compositions_aspect(services: Services) -> None:
    user = make_user(services.db)
    generation = make_generation(services.db, user)
    render, _ = start_render(services, user, RenderRequest(generation, width=1280))
    assert (render.width, render.height) == (1280, 720)


def test_other_users_generation_is_not_found_and_costs_nothing(services: Services) -> None:
    alice, bob = make_user(services.db, "alice"), make_user(services.db, "bob")
    generation = make_generation(services.db, alice)
    with pytest.raises(store.NotFound):
        start_render(services, bob, RenderRequest(generation))
    with pytest.raises(store.NotFound):
        start_render(services, bob, RenderRequest("not-an-id"))
    with services.db.session() as session:
        assert quota_status(session, services.quota, bob).remaining == 5


@pytest.mark.parametrize(
    ("width", "height", "code", "field"),
    [
        (3840, 2160, "resolution_too_large", "width"),
        (1920, 1200, "resolution_too_large", "height"),
        (1279, 720, "invalid_resolution", "width"),
        (8, 8, "invalid_resolution", "width"),
        (1280, 0, "invalid_resolution", "height"),
    ],
)
def test_caps_refuse_before_any_quota_is_used(
    services: Services, width: int, height: int, code: str, field: str
) -> None:
    user = make_user(services.db)
    generation = make_generation(services.db, user)
    with pytest.raises(CapError) as refused:
        start_render(services, user, RenderRequest(generation, width, height))
    assert (refused.value.code, refused.value.field) == (code, field)
    with services.db.session() as session:
        assert quota_status(session, services.quota, user).remaining == 5
    assert count_renders(services) == 0


def test_duration_cap_message_is_the_seeds(services: Services) -> None:
    services.limits = Limits(max_duration_seconds=2)
    user = make_user(services.db)
    generation = make_generation(services.db, user, duration_in_frames=90)
    with pytest.raises(CapError) as refused:
        start_render(services, user, RenderRequest(generation))
    assert refused.value.code == "duration_too_long"
    assert refused.value.message == "Animation too long. Maximum duration is 2 seconds."


def test_unknown_codec_is_refused(services: Services) -> None:
    user = make_user(services.db)
    with pytest.raises(CapError, match="codec"):
        start_render(services, user, RenderRequest(make_generation(services.db, user), codec="av1"))


def test_sixth_render_in_the_window_is_refused_with_retry_after(services: Services, clock) -> None:
    services.limits = services.limits.model_copy(update={"max_concurrent_renders": 10})
    user = make_user(services.db)
    generation = make_generation(services.db, user)
    for _ in range(5):
        start_render(services, user, RenderRequest(generation))
    with pytest.raises(QuotaExceeded) as refused:
        start_render(services, user, RenderRequest(generation))
    assert refused.value.message == (
        "Render quota exceeded. You can render up to 5 videos per hour. Please try again later."
    )
    assert 0 < refused.value.retry_after_ms <= 3_600_000
    with services.db.session() as session:
        status = quota_status(session, services.quota, user)
    assert (status.limit, status.remaining) == (5, 0)
    assert status.retry_after_ms == refused.value.retry_after_ms
    assert status.resets_at_ms == clock.now + status.retry_after_ms
    clock.advance(refused.value.retry_after_ms)
    start_render(services, user, RenderRequest(generation))
    assert count_renders(services) == 6


def test_users_have_separate_quotas(services: Services) -> None:
    services.limits = services.limits.model_copy(update={"max_concurrent_renders": 10})
    alice, bob = make_user(services.db, "alice"), make_user(services.db, "bob")
    ga, gb = make_generation(services.db, alice), make_generation(services.db, bob)
    for _ in range(5):
        start_render(services, alice, RenderRequest(ga))
    with pytest.raises(QuotaExceeded):
        start_render(services, alice, RenderRequest(ga))
    render, created = start_render(services, bob, RenderRequest(gb))
    assert created and render.user_id == bob, "alice's spent quota is not bob's"
    with services.db.session() as session:
        assert quota_status(session, services.quota, alice).remaining == 0
        assert quota_status(session, services.quota, bob).remaining == 4


def test_idempotency_key_replays_without_more_quota(services: Services) -> None:
    dispatcher = RecordingDispatcher(services)
    services.dispatcher = dispatcher
    user = make_user(services.db)
    generation = make_generation(services.db, user)
    first, created = start_render(services, user, RenderRequest(generation), idempotency_key="k1")
    again, created_again = start_render(
        services, user, RenderRequest(generation), idempotency_key="k1"
    )
    assert created and not created_again and again.id == first.id
    assert len(dispatcher.seen) == 1
    with services.db.session() as session:
        assert quota_status(session, services.quota, user).remaining == 4
    with pytest.raises(IdempotencyConflict):
        start_render(services, user, RenderRequest(generation, 640, 360), idempotency_key="k1")


def test_idempotency_key_expires(services: Services, clock) -> None:
    user = make_user(services.db)
    generation = make_generation(services.db, user)
    first, _ = start_render(services, user, RenderRequest(generation), idempotency_key="k")
    clock.advance(services.limits.idempotency_ttl_ms + 1)
    second, created = start_render(services, user, RenderRequest(generation), idempotency_key="k")
    assert created and second.id != first.id


def test_stored_props_are_read_by_content_and_a_row_that_fails_is_refused_each_time(
    services: Services,
) -> None:
    """The start's validated props are cached by the stored text, never by generation id:
    a row that changes (an operator's fix, a migration) is read anew, and props that no longer
    validate fail every start rather than once."""
    import json

    from pydantic import ValidationError
    from sqlalchemy import text

    user = make_user(services.db)
    generation = make_generation(services.db, user, duration_in_frames=90)
    first, _ = start_render(services, user, RenderRequest(generation))
    assert first.duration_in_frames == 90

    def store_props(props: dict[str, object]) -> None:
        with services.db.transaction() as session:
            session.execute(
                text("UPDATE generations SET animation_props = :p WHERE id = :id"),
                {"p": json.dumps(props), "id": generation},
            )

    store_props(
        {"text": "changed", "style": "fade-in", "color": "#FFFFFF", "duration_in_frames": 45}
    )
    second, _ = start_render(services, user, RenderRequest(generation))
    assert second.duration_in_frames == 45
    store_props({"text": "", "style": "fade-in", "color": "#FFFFFF", "duration_in_frames": 45})
    for _ in range(2):
        with pytest.raises(ValidationError):
            start_render(services, user, RenderRequest(generation))
    assert count_renders(services) == 2
