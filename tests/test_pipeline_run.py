"""Running one render in this process: claim, encode, store, complete; and every way it ends
otherwise (storage refusing writes, bad props, timeout, cancel, lost lease)."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import update

from renderlab.clock import now_ms
from renderlab.limits import Limits
from renderlab.models import Generation
from renderlab.pipeline import actions, lifecycle, recover
from renderlab.pipeline.claim import lease_owner, parse_owner
from renderlab.pipeline.failures import STORAGE_FAILED, LostClaim
from renderlab.pipeline.progress import ProgressReporter
from renderlab.pipeline.run import output_key, run_render
from renderlab.services import Services
from tests.conftest import FakeClock
from tests.pipeline_helpers import (
    FAST_LIMITS,
    QUICK_PROPS,
    ProgressWatcher,
    fetch_video,
    ffprobe,
    full_row,
    non_decreasing,
    pipeline_services,
    read,
    remaining_quota,
    started,
    unwritable_storage_url,
)


def run(svc: Services, render_id: str, tmp_path: Path, **kwargs: object) -> object:
    token = uuid.uuid4().hex[:8]
    return run_render(
        svc,
        render_id,
        owner=lease_owner(token),
        job_id=f"test-{token}",
        workdir=tmp_path,
        **kwargs,  # type: ignore[arg-type]
    )


def test_a_render_completes_with_a_valid_mp4_and_a_signed_url(
    svc: Services, tmp_path: Path, clock: FakeClock
) -> None:
    user, render_id = started(svc)
    finished = run(svc, render_id, tmp_path)
    assert finished is not None
    row = full_row(svc.db, render_id)
    assert (row["status"], row["progress"], row["error"]) == ("complete", 100, None)
    assert row["attempts"] == 1 and row["bucket_name"] == "local"
    assert row["render_id"].startswith("test-")
    assert row["output_key"] == f"renders/{render_id}.mp4" and user not in row["output_key"]
    assert row["poster_key"] == f"posters/{render_id}.png"
    assert row["completed_at"] == clock.now and row["started_at"] == clock.now
    assert row["output_url"] is None, "a URL that expires is signed when read, never stored"
    url = actions.signed_urls(svc, read(svc.db, render_id)).output_url
    assert url is not None and url.startswith("http://127.0.0.1:8000/files/renders/")
    expires = clock.now // 1000 + svc.limits.download_url_ttl_s
    assert f"expires={expires}" in url
    video = fetch_video(svc, read(svc.db, render_id), tmp_path / "out.mp4")
    assert row["output_size"] == video.stat().st_size > 0
    probe = ffprobe(video)
    assert (probe["codec_name"], probe["width"], probe["height"]) == ("h264", 320, 180)
    assert int(probe["nb_read_packets"]) == QUICK_PROPS["duration_in_frames"]
    assert "mp4" in probe["format_name"]
    assert not list(tmp_path.glob("*.mp4.part")), "no partial files left behind"


def test_progress_is_written_while_rendering_and_never_goes_down(
    svc: Services, tmp_path: Path
) -> None:
    svc.limits = Limits(**{**FAST_LIMITS, "progress_min_interval_ms": 0})
    _, render_id = started(svc, duration_in_frames=300)
    watcher = ProgressWatcher(svc.db, [render_id])
    worker = threading.Thread(target=run, args=(svc, render_id, tmp_path / "work"))
    (tmp_path / "work").mkdir()
    worker.start()
    watcher.until_finished()
    worker.join()
    seen = watcher.seen[render_id]
    assert non_decreasing(seen), seen
    assert seen[-1] == 100
    assert any(0 < value < 100 for value in seen), f"no intermediate progress seen: {seen}"


def test_claim_is_compare_and_set(svc: Services) -> None:
    _, render_id = started(svc)
    first = lifecycle.claim(svc, render_id, owner=lease_owner("a"), job_id="a")
    second = lifecycle.claim(svc, render_id, owner=lease_owner("b"), job_id="b")
    assert first is not None and second is None
    row = full_row(svc.db, render_id)
    assert (row["status"], row["attempts"], row["lease_owner"]) == (
        "rendering",
        1,
        first.lease_owner,
    )
    assert row["lease_expires_at"] == svc.clock() + svc.limits.lease_ms
    assert lifecycle.claim(svc, "01ARZ3NDEKTSV4RRFFQ69G5FAV", owner="x", job_id="x") is None


def test_a_lease_is_only_renewed_by_its_holder_and_progress_only_goes_up(
    svc: Services, clock: FakeClock
) -> None:
    _, render_id = started(svc)
    owner = lease_owner("me")
    lifecycle.claim(svc, render_id, owner=owner, job_id="me")
    clock.advance(500)
    assert lifecycle.progress(svc, render_id, owner, percent=40).progress == 40
    assert lifecycle.progress(svc, render_id, owner, percent=10).progress == 40
    assert full_row(svc.db, render_id)["lease_expires_at"] == clock.now + svc.limits.lease_ms
    with pytest.raises(LostClaim):
        lifecycle.progress(svc, render_id, lease_owner("someone-else"), percent=50)
    assert parse_owner(owner) is not None and parse_owner(owner).token == "me"  # type: ignore[union-attr]


def test_storage_that_refuses_writes_fails_the_render_and_refunds_the_slot(
    svc: Services, tmp_path: Path, clock: FakeClock
) -> None:
    bad = pipeline_services(
        svc.settings, svc.db, svc.limits, clock=clock, storage_url=unwritable_storage_url(tmp_path)
    )
    user, render_id = started(bad)
    assert remaining_quota(bad, user) == 4
    run(bad, render_id, tmp_path)
    row = full_row(bad.db, render_id)
    assert (row["status"], row["error"]) == ("failed", STORAGE_FAILED)
    assert row["quota_refunded"] is True and row["output_key"] is None
    assert remaining_quota(bad, user) == 5


def test_props_that_cannot_be_rendered_fail_with_their_reason_and_give_the_slot_back(
    svc: Services, tmp_path: Path
) -> None:
    user, render_id = started(svc)
    generation_id = full_row(svc.db, render_id)["generation_id"]
    with svc.db.transaction() as session:
        session.execute(
            update(Generation)
            .where(Generation.id == generation_id)
            .values(animation_props={"text": "", "style": "fade-in", "color": "#FFFFFF"})
        )
    run(svc, render_id, tmp_path)
    row = full_row(svc.db, render_id)
    assert row["status"] == "failed"
    assert row["error"].startswith("The animation's settings are not valid (text):")
    assert "Traceback" not in row["error"]
    assert row["error_code"] == "invalid_props"
    # Issue 16: a render that fails because of its own props gives the slot back.
    assert row["quota_refunded"] is True
    assert remaining_quota(svc, user) == 5


def test_a_render_past_its_timeout_is_stopped_and_fails_with_a_refund(
    svc: Services, tmp_path: Path, clock: FakeClock
) -> None:
    svc.limits = Limits(
        **{**FAST_LIMITS, "render_timeout_ms": 1000, "render_cost_budget_ms": 60_000}
    )
    user, render_id = started(svc)
    # The whole time budget is gone as soon as the render is claimed.
    run(svc, render_id, tmp_path, on_claimed=lambda _render: clock.advance(1000))
    row = full_row(svc.db, render_id)
    assert (row["status"], row["error"]) == ("failed", "Render timed out after 1 second.")
    assert row["output_key"] is None and row["quota_refunded"] is True
    assert remaining_quota(svc, user) == 5
    assert not svc.storage.exists(f"renders/{user}/{render_id}.mp4")


def test_timeout_message_names_the_configured_seconds(svc: Services, tmp_path: Path) -> None:
    from renderlab.pipeline.failures import timed_out_message

    assert timed_out_message(Limits()) == "Render timed out after 60 seconds."
    assert (
        timed_out_message(Limits(render_timeout_ms=1500)) == "Render timed out after 1.5 seconds."
    )


def test_a_render_cancelled_while_running_stops_and_stores_nothing(
    svc: Services, tmp_path: Path
) -> None:
    user, render_id = started(svc)

    def cancel(_render: object) -> None:
        lifecycle.cancel(svc, user, render_id)

    assert run(svc, render_id, tmp_path, on_claimed=cancel) is None
    row = full_row(svc.db, render_id)
    assert (row["status"], row["error"], row["quota_refunded"]) == (
        "failed",
        "Render cancelled.",
        True,
    )
    assert not svc.storage.exists(f"renders/{user}/{render_id}.mp4")
    assert remaining_quota(svc, user) == 5


def test_a_worker_whose_lease_was_handed_on_writes_nothing_more(
    svc: Services, tmp_path: Path, clock: FakeClock
) -> None:
    _, render_id = started(svc)
    dispatched: list[str] = []

    def presumed_dead(_render: object) -> None:
        clock.advance(svc.limits.lease_ms + 1)
        recover.reconcile(svc, dispatched.append)

    assert run(svc, render_id, tmp_path, on_claimed=presumed_dead) is None
    row = full_row(svc.db, render_id)
    assert (row["status"], row["attempts"], row["lease_owner"]) == ("pending", 1, None)
    assert dispatched == [render_id]
    # The next attempt completes it, and progress picks up where the row left it.
    assert run(svc, render_id, tmp_path) is not None
    row = full_row(svc.db, render_id)
    assert (row["status"], row["attempts"], row["progress"]) == ("complete", 2, 100)


def test_output_key_is_per_render_without_the_user(svc: Services) -> None:
    user, render_id = started(svc)
    claimed = lifecycle.claim(svc, render_id, owner="o", job_id="j")
    assert claimed is not None
    assert output_key(claimed) == f"renders/{render_id}.mp4"
    assert user not in output_key(claimed)


def test_progress_writes_are_throttled_to_the_minimum_interval(svc: Services) -> None:
    svc.limits = Limits(**{**FAST_LIMITS, "progress_min_interval_ms": 100})
    _, render_id = started(svc)
    owner = lease_owner("throttled")
    claimed = lifecycle.claim(svc, render_id, owner=owner, job_id="t")
    assert claimed is not None
    reporter = ProgressReporter(svc, claimed, owner)
    began = time.monotonic()
    while (elapsed := time.monotonic() - began) < 0.35:  # frames complete steadily
        reporter.frames(int(elapsed / 0.35 * 1000), 1000)
        time.sleep(0.001)
    reporter.flush()
    # One write per 100 ms at most (plus the final flush), always upwards, never 100 before
    # the render is complete.
    assert 2 <= len(reporter.writes) <= 5, reporter.writes
    assert reporter.writes == sorted(set(reporter.writes))
    assert read(svc.db, render_id).progress == reporter.writes[-1] <= 99


def test_the_heartbeat_keeps_the_lease_alive_while_no_frame_completes(svc: Services) -> None:
    svc.limits = Limits(**{**FAST_LIMITS, "lease_ms": 600})  # a heartbeat every 200 ms
    svc.clock = now_ms  # each renewal stamps ``updated_at`` with the services' clock: let it run
    _, render_id = started(svc)
    owner = lease_owner("beating")
    claimed = lifecycle.claim(svc, render_id, owner=owner, job_id="b")
    assert claimed is not None
    reporter = ProgressReporter(svc, claimed, owner)
    stamps = set()
    with reporter.running():
        end = time.monotonic() + 0.7
        while time.monotonic() < end:
            stamps.add(read(svc.db, render_id).updated_at)
            time.sleep(0.02)
    assert len(stamps) >= 3, "the lease was renewed while the encoder was silent"
    reporter.check()  # still ours, not timed out
