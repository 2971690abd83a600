"""Render metrics come from the lifecycle: ``renders_started`` once at the first claim (with
its queue wait), ``renders_finished`` once per terminal transition, and only after the ending
transaction committed (an ending that rolls back is not counted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from renderlab import metrics
from renderlab.pipeline import lifecycle
from renderlab.services import Services
from tests.api_helpers import attach_local_storage
from tests.conftest import FakeClock
from tests.metrics_helpers import value
from tests.pipeline_helpers import started


def counted(name: str, **labels: str) -> float:
    return value(metrics.exposition().decode(), name, **labels)


def test_started_at_claim_and_finished_after_commit(
    services: Services, clock: FakeClock, tmp_path: Path
) -> None:
    attach_local_storage(services)
    _user, render_id = started(services)
    before = {
        "started": counted("renderlab_renders_started_total", codec="h264"),
        "waits": counted("renderlab_render_queue_wait_seconds_count"),
        "complete": counted("renderlab_renders_finished_total", status="complete", codec="h264"),
        "failed": counted("renderlab_renders_finished_total", status="failed", codec="h264"),
        "durations": counted("renderlab_render_duration_seconds_count", codec="h264"),
    }
    clock.advance(1500)
    lifecycle.claim(services, render_id, owner="w", job_id="j")
    assert counted("renderlab_renders_started_total", codec="h264") == before["started"] + 1
    assert counted("renderlab_render_queue_wait_seconds_count") == before["waits"] + 1
    video = tmp_path / "v.mp4"
    video.write_bytes(b"stored")
    services.storage.put_file(f"renders/{render_id}.mp4", video, "video/mp4")
    lifecycle.complete(
        services, render_id, "w", output_key=f"renders/{render_id}.mp4", output_size=6
    )
    finished = counted("renderlab_renders_finished_total", status="complete", codec="h264")
    assert finished == before["complete"] + 1
    assert counted("renderlab_render_duration_seconds_count", codec="h264") == (
        before["durations"] + 1
    )

    _, other = started(services, "bob")

    def breaks(*_args: object) -> None:
        raise RuntimeError("a hook after ours fails: the ending rolls back")

    lifecycle.AT_END.append(breaks)
    try:
        with pytest.raises(RuntimeError):
            lifecycle.cancel(services, _owner(services, other), other)
    finally:
        lifecycle.AT_END.remove(breaks)
    assert (
        counted("renderlab_renders_finished_total", status="failed", codec="h264")
        == (before["failed"])
    )
    lifecycle.cancel(services, _owner(services, other), other)
    assert counted("renderlab_renders_finished_total", status="failed", codec="h264") == (
        before["failed"] + 1
    )


def _owner(services: Services, render_id: str) -> str:
    from tests.pipeline_helpers import read

    return read(services.db, render_id).user_id
