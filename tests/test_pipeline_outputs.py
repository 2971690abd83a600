"""A render's files: keys named by the render alone with the codec's extension, and nothing left
behind by a render that fails after an attempt stored them (cancelled, or its worker lost)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from renderlab.limits import Limits
from renderlab.pipeline import lifecycle, outputs, recover
from renderlab.pipeline.run import load_props, render_range
from renderlab.services import Services
from tests.conftest import FakeClock
from tests.pipeline_helpers import FAST_LIMITS, full_row, pipeline_services, read, started


@pytest.fixture
def svc(services: Services, clock: FakeClock) -> Services:
    limits = Limits(**{**FAST_LIMITS, "max_render_attempts": 1})
    return pipeline_services(services.settings, services.db, limits, clock=clock)


def stored_then_stopped(
    svc: Services, tmp_path: Path, codec: str = "vp9"
) -> tuple[str, str, list[str]]:
    """A render claimed, rendered and stored (output and poster) whose worker then stops before
    completing it, as one killed at that moment would: ``(user, render id, keys)``."""
    from renderlab.models import Render

    user, render_id = started(svc)
    with svc.db.transaction() as session:  # the codec a request would have asked for
        row = session.get(Render, render_id)
        assert row is not None
        row.codec = codec
    claimed = lifecycle.claim(svc, render_id, owner="w:1", job_id="j")
    assert claimed is not None
    props = load_props(svc, claimed)
    extension = {"vp9": ".webm", "gif": ".gif"}[codec]
    video = render_range(props, claimed, 0, props.duration_in_frames, tmp_path / "v", None)
    key, _ = outputs.store_output(svc, claimed, video)
    poster = outputs.store_poster(svc, claimed, props, tmp_path)
    assert (key, poster) == (f"renders/{render_id}{extension}", f"posters/{render_id}.png")
    assert svc.storage.exists(key) and svc.storage.exists(poster)
    return user, render_id, [key, poster]


def test_a_render_cancelled_after_storing_leaves_no_files(svc: Services, tmp_path: Path) -> None:
    user, render_id, keys = stored_then_stopped(svc, tmp_path)
    lifecycle.cancel(svc, user, render_id)
    assert full_row(svc.db, render_id)["error_code"] == "cancelled"
    assert not any(svc.storage.exists(key) for key in keys)


def test_a_lost_render_leaves_no_files(svc: Services, tmp_path: Path, clock: FakeClock) -> None:
    _, render_id, keys = stored_then_stopped(svc, tmp_path)
    clock.advance(svc.limits.lease_ms + 1)
    done = recover.reconcile(svc, lambda _id: None)
    assert done.failed == [render_id]
    assert read(svc.db, render_id).error_code == "worker_lost"
    assert not any(svc.storage.exists(key) for key in keys)


def test_a_completed_render_keeps_its_files(svc: Services, tmp_path: Path) -> None:
    _, render_id, keys = stored_then_stopped(svc, tmp_path, codec="gif")
    done = lifecycle.complete(
        svc, render_id, "w:1", output_key=keys[0], output_size=1, poster_key=keys[1]
    )
    assert done.status == "complete"
    assert all(svc.storage.exists(key) for key in keys)


def test_cancelling_a_render_never_claimed_asks_storage_nothing(
    svc: Services, caplog: pytest.LogCaptureFixture
) -> None:
    user, render_id = started(svc)
    svc.storage_factory, svc._storage = None, None  # any storage call now fails (and is logged)
    with caplog.at_level(logging.WARNING, logger="renderlab.pipeline.outputs"):
        assert lifecycle.cancel(svc, user, render_id).status == "failed"
    assert not caplog.records
