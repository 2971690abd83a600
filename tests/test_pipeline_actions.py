"""Owner actions on a started render: cancel it, and sign a fresh download URL."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from renderlab import store
from renderlab.pipeline import actions, lifecycle
from renderlab.pipeline.claim import lease_owner
from renderlab.pipeline.failures import Failure
from renderlab.pipeline.refund import refund_quota
from renderlab.pipeline.run import run_render
from renderlab.pipeline.start import RenderRequest, start_render
from renderlab.services import Services
from renderlab.storage import LocalStorage
from tests.conftest import FakeClock
from tests.factories import make_user
from tests.pipeline_helpers import (
    SMALL,
    full_row,
    remaining_quota,
    started,
)

UNKNOWN = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


class CancelRecorder:
    """A dispatcher that records what it was asked to dispatch and to cancel."""

    def __init__(self) -> None:
        self.dispatched: list[str] = []
        self.cancelled: list[str] = []

    def dispatch(self, render_id: str) -> None:
        self.dispatched.append(render_id)

    def cancel(self, render_id: str) -> None:
        self.cancelled.append(render_id)


def completed(svc: Services, tmp_path: Path, name: str = "alice") -> tuple[str, str]:
    user, render_id = started(svc, name)
    token = uuid.uuid4().hex[:8]
    assert run_render(svc, render_id, owner=lease_owner(token), job_id=token, workdir=tmp_path)
    return user, render_id


def test_cancelling_a_pending_render_fails_it_and_gives_the_slot_back(
    svc: Services, clock: FakeClock
) -> None:
    recorder = CancelRecorder()
    svc.dispatcher = recorder
    user, render_id = started(svc)
    assert remaining_quota(svc, user) == 4
    cancelled = lifecycle.cancel(svc, user, render_id)
    assert (cancelled.status, cancelled.error) == ("failed", "Render cancelled.")
    assert cancelled.completed_at == clock.now
    assert remaining_quota(svc, user) == 5
    assert recorder.cancelled == [render_id], "the dispatcher is told to stop it at once"


def test_cancelling_a_rendering_render_ends_its_claim(svc: Services) -> None:
    user, render_id = started(svc)
    lifecycle.claim(svc, render_id, owner=lease_owner("w"), job_id="w")
    lifecycle.cancel(svc, user, render_id)
    row = full_row(svc.db, render_id)
    assert (row["status"], row["error"], row["lease_expires_at"]) == (
        "failed",
        "Render cancelled.",
        None,
    )
    assert remaining_quota(svc, user) == 5


def test_a_finished_render_cannot_be_cancelled(svc: Services, tmp_path: Path) -> None:
    user, render_id = completed(svc, tmp_path)
    with pytest.raises(lifecycle.RenderFinished, match="already completed"):
        lifecycle.cancel(svc, user, render_id)
    _, other = started(svc, "bob")
    bob = make_user(svc.db, "bob")
    lifecycle.cancel(svc, bob, other)
    with pytest.raises(lifecycle.RenderFinished, match="already failed"):
        lifecycle.cancel(svc, bob, other)


def test_the_slot_is_given_back_only_once(svc: Services) -> None:
    user, first = started(svc)
    generation = full_row(svc.db, first)["generation_id"]
    start_render(svc, user, RenderRequest(generation, **SMALL))
    assert remaining_quota(svc, user) == 3
    lifecycle.cancel(svc, user, first)
    assert remaining_quota(svc, user) == 4
    assert lifecycle.fail(svc, first, Failure("again", refund=True)) is None
    with svc.db.transaction() as session:
        render = store.lock(session, first)
        assert refund_quota(session, svc, render) is False
    assert remaining_quota(svc, user) == 4


def test_only_the_owner_can_cancel(svc: Services) -> None:
    _, render_id = started(svc, "alice")
    bob = make_user(svc.db, "bob")
    with pytest.raises(store.NotFound):
        lifecycle.cancel(svc, bob, render_id)
    with pytest.raises(store.NotFound):
        lifecycle.cancel(svc, bob, UNKNOWN)
    with pytest.raises(store.NotFound):
        lifecycle.cancel(svc, bob, "not-an-id")
    assert full_row(svc.db, render_id)["status"] == "pending"


def test_download_url_is_signed_afresh_from_the_output_key(
    svc: Services, tmp_path: Path, clock: FakeClock
) -> None:
    user, render_id = completed(svc, tmp_path)
    stored = full_row(svc.db, render_id)
    clock.advance(2 * svc.limits.download_url_ttl_s * 1000)  # the stored URL has long expired
    signed = actions.download_url(svc, user, render_id)
    assert signed.url != stored["output_url"]
    assert int(signed.expires_at.timestamp()) == clock.now // 1000 + svc.limits.download_url_ttl_s
    parts = urlsplit(signed.url)
    assert parts.path == f"/files/{stored['output_key']}"
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    storage = svc.storage
    assert isinstance(storage, LocalStorage)
    assert query["type"] == "video/mp4"
    assert storage.verify(
        stored["output_key"],
        int(query["expires"]),
        query["filename"],
        query["sig"],
        content_type=query["type"],
    )
    assert query["filename"] == f"render-{render_id}.mp4"


def test_download_url_needs_a_complete_render_of_ones_own(svc: Services, tmp_path: Path) -> None:
    user, pending = started(svc)
    with pytest.raises(actions.RenderNotComplete, match="pending"):
        actions.download_url(svc, user, pending)
    _, done = completed(svc, tmp_path, "carol")
    with pytest.raises(store.NotFound):
        actions.download_url(svc, user, done)
    with pytest.raises(store.NotFound):
        actions.download_url(svc, user, UNKNOWN)
