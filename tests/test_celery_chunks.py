"""Chunk bookkeeping of the cluster mode (``pipeline.chunked``) on SQLite and PostgreSQL, driven
by a fake clock: planning, claiming with a lease, summed progress that never goes down, the
last chunk triggering exactly one join, and lost chunks handed out again or failed."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import select

from renderlab import store
from renderlab.limits import Limits
from renderlab.models import RenderChunk
from renderlab.pipeline import chunked, lifecycle
from renderlab.pipeline.failures import WORKER_LOST, Failure, LostClaim, RenderTimedOut
from renderlab.pipeline.recover import reconcile
from renderlab.pipeline.start import RenderRequest, start_render
from renderlab.services import Services
from tests.conftest import FakeClock
from tests.factories import make_generation, make_user
from tests.pipeline_helpers import full_row, pipeline_services, remaining_quota

LIMITS = {"lease_ms": 1000, "chunk_frames": 150, "min_chunk_frames": 20}


@pytest.fixture
def svc_limits() -> dict[str, Any]:
    return LIMITS


def claimed(svc: Services, frames: int = 600) -> tuple[str, str, str]:
    """A started render claimed by a job: ``(user, render_id, job owner)``."""
    user = make_user(svc.db)
    generation = make_generation(svc.db, user, style="fade-in", duration_in_frames=frames)
    render, _ = start_render(svc, user, RenderRequest(generation, 320, 180))
    assert chunked.claim_job(svc, render.id, "job1") is not None
    return user, render.id, chunked.job_owner("job1")


def planned(svc: Services, frames: int = 600) -> tuple[str, str, str, list[int]]:
    user, render_id, owner = claimed(svc, frames)
    render = _render(svc, render_id)
    return user, render_id, owner, chunked.plan(svc, render, owner)


def _render(svc: Services, render_id: str) -> store.RenderSnapshot:
    with svc.db.read_one() as connection:
        return store.get(connection, render_id)


def take(
    svc: Services, render_id: str, owner: str, index: int, worker: str = "w1@h:1"
) -> chunked.ChunkClaim:
    claim = chunked.claim_chunk(svc, render_id, index, owner=owner, worker=worker)
    assert claim is not None
    return claim


def chunk_rows(svc: Services, render_id: str) -> list[dict]:
    with svc.db.session() as session:
        rows = session.execute(
            select(RenderChunk)
            .where(RenderChunk.render_id == render_id)
            .order_by(RenderChunk.index)
        ).scalars()
        return [{c.name: getattr(row, c.name) for c in row.__table__.columns} for row in rows]


def test_a_600_frame_render_is_planned_as_contiguous_chunks_once(svc: Services) -> None:
    _, render_id, owner, todo = planned(svc)

    rows = chunk_rows(svc, render_id)
    assert todo == [0, 1, 2, 3]
    assert [(r["start_frame"], r["end_frame"]) for r in rows] == [
        (0, 150),
        (150, 300),
        (300, 450),
        (450, 600),
    ]
    assert all(r["status"] == "pending" and r["frames_done"] == 0 for r in rows)
    # A second plan (a duplicated start message under the same job) adds nothing.
    assert chunked.plan(svc, _render(svc, render_id), owner) == [0, 1, 2, 3]
    assert len(chunk_rows(svc, render_id)) == 4


def test_plan_refuses_a_job_that_no_longer_holds_the_render(svc: Services) -> None:
    _, render_id, _owner = claimed(svc)
    with pytest.raises(LostClaim):
        chunked.plan(svc, _render(svc, render_id), chunked.job_owner("someone-else"))


def test_the_chunk_minimum_wins_over_the_chunk_size(services: Services, clock: FakeClock) -> None:
    svc = pipeline_services(
        services.settings,
        services.db,
        Limits(chunk_frames=10, min_chunk_frames=50, lease_ms=1000),
        clock=clock,
    )
    _, render_id, _, todo = planned(svc, frames=120)
    assert todo == [0, 1]
    assert [r["end_frame"] - r["start_frame"] for r in chunk_rows(svc, render_id)] == [60, 60]


def test_a_chunk_is_held_by_one_worker_until_its_lease_lapses(
    svc: Services, clock: FakeClock
) -> None:
    _, render_id, owner, _ = planned(svc)
    first = take(svc, render_id, owner, 0, "w1@h:1")
    assert (first.start, first.end, first.worker) == (0, 150, "w1@h:1")

    # A redelivered message for the same chunk finds it held and does nothing.
    assert chunked.claim_chunk(svc, render_id, 0, owner=owner, worker="w2@h:2") is None
    # A message of an earlier job, or for a chunk that does not exist, does nothing either.
    assert chunked.claim_chunk(svc, render_id, 1, owner="job:old", worker="w2@h:2") is None
    assert chunked.claim_chunk(svc, render_id, 99, owner=owner, worker="w2@h:2") is None

    clock.advance(svc.limits.lease_ms + 1)
    second = take(svc, render_id, owner, 0, "w2@h:2")
    assert second.worker == "w2@h:2"
    assert chunk_rows(svc, render_id)[0]["attempts"] == 2
    # The first worker, back from a pause, learns the chunk is no longer its own.
    with pytest.raises(LostClaim):
        chunked.record_progress(svc, first, 10)


def test_progress_is_the_sum_of_the_chunks_and_never_goes_down(svc: Services) -> None:
    _, render_id, owner, _ = planned(svc)
    a = take(svc, render_id, owner, 0, "w1@h:1")
    b = take(svc, render_id, owner, 1, "w2@h:2")

    assert chunked.record_progress(svc, a, 60) == 10  # 60 of 600 frames
    assert chunked.record_progress(svc, b, 90) == 25  # 150 of 600
    assert chunked.record_progress(svc, a, 30) == 25, "a lower count must not lower progress"
    assert chunk_rows(svc, render_id)[0]["frames_done"] == 60
    assert chunked.record_progress(svc, a, 10_000) == 40, "capped at the chunk's own frames"

    for index in (2, 3):
        claim = take(svc, render_id, owner, index)
        chunked.finish_chunk(svc, claim, chunked.segment_key(render_id, index))
    chunked.finish_chunk(svc, a, chunked.segment_key(render_id, 0))
    assert full_row(svc.db, render_id)["progress"] == 90  # 540 of 600 frames
    assert chunked.finish_chunk(svc, b, chunked.segment_key(render_id, 1)) is True
    assert full_row(svc.db, render_id)["progress"] == 99, "100 is written with complete only"


def test_a_rerun_chunk_keeps_the_frames_its_first_run_reported(
    svc: Services, clock: FakeClock
) -> None:
    _, render_id, owner, _ = planned(svc)
    chunked.record_progress(svc, take(svc, render_id, owner, 0, "w1@h:1"), 120)
    clock.advance(svc.limits.lease_ms + 1)
    assert chunked.release_lost_chunks(svc) == [(render_id, owner, 0)]

    again = take(svc, render_id, owner, 0, "w2@h:2")
    assert chunked.record_progress(svc, again, 15) == 20  # still 120 of 600
    assert chunk_rows(svc, render_id)[0]["frames_done"] == 120


def test_progress_writes_renew_the_chunk_and_the_render_leases(
    svc: Services, clock: FakeClock
) -> None:
    _, render_id, owner, _ = planned(svc)
    claim = take(svc, render_id, owner, 0)
    render_lease = full_row(svc.db, render_id)["lease_expires_at"]
    clock.advance(svc.limits.render_timeout_ms)  # past the job's first lease

    chunked.record_progress(svc, claim, 5)

    assert chunk_rows(svc, render_id)[0]["lease_expires_at"] == clock.now + svc.limits.lease_ms
    assert full_row(svc.db, render_id)["lease_expires_at"] == clock.now + svc.limits.lease_ms
    assert clock.now + svc.limits.lease_ms > render_lease


def test_only_the_last_chunk_done_triggers_the_join(svc: Services) -> None:
    _, render_id, owner, todo = planned(svc)
    claims = [take(svc, render_id, owner, index) for index in todo]
    assert chunked.segments(svc, render_id) is None

    lasts = [chunked.finish_chunk(svc, c, chunked.segment_key(render_id, c.index)) for c in claims]

    assert lasts == [False, False, False, True]
    assert chunked.segments(svc, render_id) == [chunked.segment_key(render_id, i) for i in range(4)]
    # A finished chunk is not claimed again (a redelivered message).
    assert chunked.claim_chunk(svc, render_id, 0, owner=owner, worker="w9@h:9") is None


QUIET_S = 0.6  # ``pending_redispatch_ms`` for the lost-message tests (wall-clock updated_at)


def test_chunk_messages_a_broker_forgot_are_sent_again_once_per_interval(svc: Services) -> None:
    svc.limits = Limits(**{**LIMITS, "pending_redispatch_ms": int(QUIET_S * 1000)})
    _, render_id, owner, todo = planned(svc)
    assert chunked.resend_lost_messages(svc).chunks == [], "just sent: not lost yet"
    take(svc, render_id, owner, 0)  # one chunk under way: the others wait in the queue
    svc.clock.advance(int((QUIET_S + 0.1) * 1000))  # type: ignore[attr-defined]
    lost = chunked.resend_lost_messages(svc)
    assert lost.chunks == [(render_id, owner, index) for index in todo[1:]]
    assert lost.joins == []
    assert chunked.resend_lost_messages(svc).chunks == [], "once per interval"


def test_a_join_message_a_broker_forgot_is_sent_again(svc: Services) -> None:
    svc.limits = Limits(**{**LIMITS, "pending_redispatch_ms": int(QUIET_S * 1000)})
    _, render_id, owner, todo = planned(svc)
    for claim in [take(svc, render_id, owner, index) for index in todo]:
        chunked.finish_chunk(svc, claim, chunked.segment_key(render_id, claim.index))
    assert chunked.resend_lost_messages(svc).joins == [], "the join was just sent"
    svc.clock.advance(int((QUIET_S + 0.1) * 1000))  # type: ignore[attr-defined]
    lost = chunked.resend_lost_messages(svc)
    assert (lost.joins, lost.chunks) == ([(render_id, owner)], [])
    assert chunked.resend_lost_messages(svc).joins == [], "once per interval"
    lifecycle.fail(svc, render_id, Failure("stop", refund=False))
    svc.clock.advance(int((QUIET_S + 0.1) * 1000))  # type: ignore[attr-defined]
    assert chunked.resend_lost_messages(svc).joins == [], "a finished render sends nothing"


def test_two_chunks_finishing_at_once_send_exactly_one_join(svc: Services) -> None:
    _, render_id, owner, todo = planned(svc, frames=300)
    assert len(todo) == 2
    claims = [take(svc, render_id, owner, index, f"w{index}@h:{index}") for index in todo]
    results: list[bool] = []
    barrier = threading.Barrier(len(claims))

    def finish(claim: chunked.ChunkClaim) -> None:
        barrier.wait()
        key = chunked.segment_key(render_id, claim.index)
        results.append(chunked.finish_chunk(svc, claim, key))

    threads = [threading.Thread(target=finish, args=(claim,)) for claim in claims]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, True]


def test_a_new_job_keeps_finished_segments_and_replans_the_rest(
    svc: Services, clock: FakeClock
) -> None:
    _, render_id, owner, _ = planned(svc)
    done = take(svc, render_id, owner, 0)
    chunked.finish_chunk(svc, done, chunked.segment_key(render_id, 0))
    stale = take(svc, render_id, owner, 1, "w1@h:1")

    # The job's lease lapses (its worker vanished): the render goes back to pending.
    clock.advance(svc.limits.render_timeout_ms + 1)
    assert lifecycle.release(svc, render_id, owner=owner) is not None
    new = chunked.claim_job(svc, render_id, "job2")
    assert new is not None
    new_owner = chunked.job_owner("job2")

    assert chunked.plan(svc, new, new_owner) == [1, 2, 3]
    rows = chunk_rows(svc, render_id)
    assert rows[0]["status"] == "complete" and rows[1]["status"] == "pending"
    # The old job's worker stops at its next write; its chunk goes to the new job.
    with pytest.raises(LostClaim):
        chunked.record_progress(svc, stale, 100)
    assert take(svc, render_id, new_owner, 1, "w2@h:2").worker == "w2@h:2"


def test_a_chunk_lost_too_often_fails_the_render_with_a_refund(
    svc: Services, clock: FakeClock
) -> None:
    user, render_id, owner, _ = planned(svc)
    assert remaining_quota(svc, user) == 4
    for attempt in range(1, svc.limits.max_render_attempts + 1):
        take(svc, render_id, owner, 2, f"w{attempt}@h:{attempt}")
        clock.advance(svc.limits.lease_ms + 1)
        handed = chunked.release_lost_chunks(svc)
        if attempt < svc.limits.max_render_attempts:
            assert handed == [(render_id, owner, 2)]

    row = full_row(svc.db, render_id)
    assert (row["status"], row["error"], row["quota_refunded"]) == ("failed", WORKER_LOST, True)
    assert remaining_quota(svc, user) == 5
    assert chunk_rows(svc, render_id)[2]["status"] == "failed"
    assert chunked.release_lost_chunks(svc) == []


def test_chunks_of_a_finished_render_are_left_alone(svc: Services, clock: FakeClock) -> None:
    _, render_id, owner, _ = planned(svc)
    claim = take(svc, render_id, owner, 0)
    lifecycle.fail(svc, render_id, Failure("Render cancelled.", refund=True))
    clock.advance(svc.limits.lease_ms + 1)

    assert chunked.release_lost_chunks(svc) == []
    assert chunked.claim_chunk(svc, render_id, 1, owner=owner, worker="w2@h:2") is None
    with pytest.raises(LostClaim):
        chunked.finish_chunk(svc, claim, chunked.segment_key(render_id, 0))


def test_a_released_chunk_is_not_counted_as_an_attempt(svc: Services) -> None:
    _, render_id, owner, _ = planned(svc)
    claim = take(svc, render_id, owner, 0)
    chunked.release_chunk(svc, claim)  # a transient failure: the task retries it
    row = chunk_rows(svc, render_id)[0]
    assert (row["status"], row["attempts"]) == ("pending", 0)
    assert take(svc, render_id, owner, 0).worker == "w1@h:1"


def test_the_reconciler_hands_out_pending_renders_and_lost_chunks(
    svc: Services, clock: FakeClock
) -> None:
    _, render_id, owner, _ = planned(svc)
    take(svc, render_id, owner, 3)
    clock.advance(svc.limits.lease_ms + 1)
    sent: list[str] = []
    # The render itself is not lost: its job lease runs for the render timeout.
    assert reconcile(svc, sent.append).retried == [] and sent == []
    assert chunked.release_lost_chunks(svc) == [(render_id, owner, 3)]


class TestChunkReporter:
    def test_writes_frames_and_stops_when_the_render_is_no_longer_the_jobs(
        self, svc: Services
    ) -> None:
        _, render_id, owner, _ = planned(svc)
        claim = take(svc, render_id, owner, 0)
        reporter = chunked.ChunkReporter(svc, claim)
        with reporter.running():
            reporter.frames(75, 150)
            reporter.flush()
            assert chunk_rows(svc, render_id)[0]["frames_done"] == 75
            lifecycle.fail(svc, render_id, Failure("Render cancelled.", refund=True))
            with pytest.raises(LostClaim):
                reporter.flush()
            with pytest.raises(LostClaim):
                reporter.frames(80, 150)

    def test_the_heartbeat_keeps_the_chunk_lease_alive_while_no_frame_comes(
        self, svc: Services, clock: FakeClock
    ) -> None:
        svc.limits = Limits(**{**LIMITS, "lease_ms": 600, "progress_min_interval_ms": 0})
        _, render_id, owner, _ = planned(svc)
        claim = take(svc, render_id, owner, 0)
        before = chunk_rows(svc, render_id)[0]["lease_expires_at"]
        with chunked.ChunkReporter(svc, claim).running():
            clock.advance(5_000)
            time.sleep(0.5)  # the heartbeat runs every lease/3 = 0.2 s
        after = chunk_rows(svc, render_id)[0]["lease_expires_at"]
        assert after == clock.now + svc.limits.lease_ms > before

    def test_raises_when_the_render_is_out_of_time(self, svc: Services, clock: FakeClock) -> None:
        _, render_id, owner, _ = planned(svc)
        claim = take(svc, render_id, owner, 0)
        clock.advance(svc.limits.render_timeout_ms)
        with pytest.raises(RenderTimedOut):
            chunked.ChunkReporter(svc, claim).frames(1, 150)
