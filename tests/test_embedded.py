"""The embedded default end to end: real worker processes, real encoder, real database and
local storage. Renders are started as the API starts them and watched through the database."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from renderlab import store
from renderlab.clock import now_ms
from renderlab.config import Settings
from renderlab.db import Database
from renderlab.limits import Limits
from renderlab.pipeline import lifecycle
from renderlab.pipeline.claim import lease_owner, parse_owner
from renderlab.pipeline.failures import STORAGE_FAILED, WORKER_LOST
from renderlab.pipeline.recover import pid_alive
from renderlab.pipeline.start import QuotaExceeded, RenderRequest, start_render
from renderlab.services import Services
from tests.factories import make_generation, make_user
from tests.pipeline_helpers import (
    FAST_LIMITS,
    HEAVY_PROPS,
    HEAVY_SIZE,
    QUICK_PROPS,
    SMALL,
    ProgressWatcher,
    embedded,
    fetch_video,
    ffprobe,
    full_row,
    non_decreasing,
    pipeline_services,
    read,
    remaining_quota,
    unwritable_storage_url,
    wait_for,
    wait_terminal,
)


def make_services(settings: Settings, db: Database, **limits: object) -> Services:
    """Services on the wall clock: the render processes and this one compare leases."""
    return pipeline_services(settings, db, Limits(**{**FAST_LIMITS, **limits}))


def start(services: Services, user: str, props: dict[str, object], size: dict[str, int]) -> str:
    generation = make_generation(services.db, user, **props)
    render, _ = start_render(services, user, RenderRequest(generation, **size))
    return render.id


def holder_pid(db: Database, render_id: str) -> int:
    """The pid of the process holding the render's lease (``host:pid:token``)."""
    owner = parse_owner(full_row(db, render_id)["lease_owner"])
    assert owner is not None
    return owner.pid


def rendering_with_progress(db: Database, render_id: str) -> bool:
    snapshot = read(db, render_id)
    return snapshot.status == "rendering" and snapshot.progress > 0


def test_five_renders_complete_with_valid_videos_and_the_sixth_is_refused(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    services = make_services(settings, db)
    user = make_user(db)
    with embedded(services, workers=2):
        ids = [start(services, user, QUICK_PROPS, SMALL) for _ in range(5)]
        with pytest.raises(QuotaExceeded):
            start(services, user, QUICK_PROPS, SMALL)
        watcher = ProgressWatcher(db, ids)
        finished = watcher.until_finished()
    for render_id, snapshot in finished.items():
        assert (snapshot.status, snapshot.progress, snapshot.error) == ("complete", 100, None)
        assert snapshot.job_id and snapshot.job_id.startswith("embedded-")
        assert snapshot.bucket_name == "local" and snapshot.output_key
        assert non_decreasing(watcher.seen[render_id]), watcher.seen[render_id]
        video = fetch_video(services, snapshot, tmp_path / f"{render_id}.mp4")
        assert snapshot.output_size == video.stat().st_size
        probe = ffprobe(video)
        assert (probe["codec_name"], probe["width"], probe["height"]) == ("h264", 320, 180)
        assert int(probe["nb_read_packets"]) == QUICK_PROPS["duration_in_frames"]
    assert remaining_quota(services, user) == 0


def test_a_render_over_the_timeout_is_stopped_fails_and_refunds(
    settings: Settings, db: Database
) -> None:
    """Accepted by the cost estimate yet out of time: the estimate's miss, not the user's."""
    services = make_services(settings, db, render_timeout_ms=1000, render_cost_budget_ms=60_000)
    user = make_user(db)
    with embedded(services, workers=1) as pool:
        render_id = start(services, user, HEAVY_PROPS, HEAVY_SIZE)
        snapshot = wait_terminal(lambda: read(db, render_id), timeout=20)
        wait_for(lambda: pool.running() == {}, timeout=2)
    assert (snapshot.status, snapshot.error) == ("failed", "Render timed out after 1 second.")
    row = full_row(db, render_id)
    ran_ms = row["completed_at"] - row["started_at"]
    assert 1000 <= ran_ms < 3000, f"the render was stopped {ran_ms} ms after it was claimed"
    assert row["quota_refunded"] is True and row["output_key"] is None
    assert remaining_quota(services, user) == 5


def test_cancel_stops_a_rendering_render_and_gives_the_slot_back(
    settings: Settings, db: Database
) -> None:
    services = make_services(settings, db)
    user = make_user(db)
    with embedded(services, workers=1) as pool:
        render_id = start(services, user, HEAVY_PROPS, HEAVY_SIZE)
        wait_for(lambda: rendering_with_progress(db, render_id))
        pid = holder_pid(db, render_id)
        cancelled = lifecycle.cancel(services, user, render_id)
        wait_for(lambda: render_id not in pool.running(), timeout=2)
        assert not pid_alive(pid) or _is_zombie(pid)
    assert (cancelled.status, cancelled.error) == ("failed", "Render cancelled.")
    row = full_row(db, render_id)
    assert (row["status"], row["error"], row["output_key"]) == ("failed", "Render cancelled.", None)
    assert remaining_quota(services, user) == 5


def test_a_killed_worker_is_replaced_and_the_render_completes(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    services = make_services(settings, db)
    user = make_user(db)
    with embedded(services, workers=1):
        render_id = start(services, user, HEAVY_PROPS, HEAVY_SIZE)
        watcher = ProgressWatcher(db, [render_id])
        wait_for(lambda: watcher.poll() and rendering_with_progress(db, render_id))
        os.kill(holder_pid(db, render_id), signal.SIGKILL)
        snapshot = watcher.until_finished()[render_id]
    row = full_row(db, render_id)
    assert (snapshot.status, row["attempts"]) == ("complete", 2)
    seen = watcher.seen[render_id]
    assert non_decreasing(seen) and seen[-1] == 100, seen
    probe = ffprobe(fetch_video(services, snapshot, tmp_path / "video.mp4"))
    assert int(probe["nb_read_packets"]) == HEAVY_PROPS["duration_in_frames"]
    assert (probe["width"], probe["height"]) == (1920, 1080)


def test_a_worker_killed_on_its_last_attempt_fails_the_render_clearly(
    settings: Settings, db: Database
) -> None:
    services = make_services(settings, db, max_render_attempts=1)
    user = make_user(db)
    with embedded(services, workers=1):
        render_id = start(services, user, HEAVY_PROPS, HEAVY_SIZE)
        wait_for(lambda: rendering_with_progress(db, render_id))
        os.kill(holder_pid(db, render_id), signal.SIGKILL)
        snapshot = wait_terminal(lambda: read(db, render_id), timeout=10)
    assert (snapshot.status, snapshot.error) == ("failed", WORKER_LOST)
    assert remaining_quota(services, user) == 5


def test_storage_that_refuses_writes_fails_the_render_and_refunds(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    services = pipeline_services(
        settings, db, Limits(**FAST_LIMITS), storage_url=unwritable_storage_url(tmp_path)
    )
    user = make_user(db)
    with embedded(services, workers=1):
        render_id = start(services, user, QUICK_PROPS, SMALL)
        snapshot = wait_terminal(lambda: read(db, render_id), timeout=20)
    assert (snapshot.status, snapshot.error) == ("failed", STORAGE_FAILED)
    assert remaining_quota(services, user) == 5


def test_renders_left_rendering_by_a_previous_serve_are_recovered_at_start(
    settings: Settings, db: Database
) -> None:
    services = make_services(settings, db)
    user = make_user(db)
    left_rendering = start(services, user, QUICK_PROPS, SMALL)
    left_pending = start(services, user, QUICK_PROPS, SMALL)
    dead_pid = _dead_pid()
    lifecycle.claim(services, left_rendering, owner=lease_owner("old", dead_pid), job_id="old")
    with services.db.transaction() as session:  # a lease that would not expire for an hour
        store.update(session, left_rendering, now=now_ms(), lease_expires_at=now_ms() + 3_600_000)
    with embedded(services, workers=1):
        wait_for(lambda: all(read(db, r).is_terminal for r in (left_rendering, left_pending)))
    assert read(db, left_rendering).status == read(db, left_pending).status == "complete"
    assert full_row(db, left_rendering)["attempts"] == 2


def test_stopping_serve_puts_a_running_render_back_without_using_an_attempt(
    settings: Settings, db: Database
) -> None:
    services = make_services(settings, db)
    user = make_user(db)
    with embedded(services, workers=1) as pool:
        render_id = start(services, user, HEAVY_PROPS, HEAVY_SIZE)
        wait_for(lambda: rendering_with_progress(db, render_id))
        pool.stop(timeout=0)
        assert pool.running() == {}
    row = full_row(db, render_id)
    assert (row["status"], row["attempts"], row["lease_owner"]) == ("pending", 0, None)
    assert row["progress"] > 0, "progress is kept for when it runs again"


def _dead_pid() -> int:
    import subprocess

    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return False
