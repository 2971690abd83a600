"""Never stuck: the reconciler and start-up recovery, driven by a fake clock (no processes)."""

from __future__ import annotations

import subprocess

from renderlab.limits import Limits
from renderlab.pipeline import lifecycle, recover
from renderlab.pipeline.claim import HOST, lease_owner
from renderlab.pipeline.failures import WORKER_LOST, Failure
from renderlab.services import Services
from tests.conftest import FakeClock
from tests.pipeline_helpers import (
    FAST_LIMITS,
    full_row,
    remaining_quota,
    started,
)


def test_an_expired_lease_is_run_again_then_failed_with_a_refund(
    svc: Services, clock: FakeClock
) -> None:
    user, render_id = started(svc)
    dispatched: list[str] = []
    owner = lease_owner("first")
    lifecycle.claim(svc, render_id, owner=owner, job_id="first")
    lifecycle.progress(svc, render_id, owner, percent=30)

    clock.advance(svc.limits.lease_ms - 1)
    assert recover.reconcile(svc, dispatched.append).retried == []  # the lease is still live

    clock.advance(2)
    done = recover.reconcile(svc, dispatched.append)
    assert (done.retried, dispatched) == ([render_id], [render_id])
    row = full_row(svc.db, render_id)
    assert (row["status"], row["attempts"], row["lease_owner"]) == ("pending", 1, None)
    assert row["progress"] == 30, "progress is kept across a retry: it never goes down"

    lifecycle.claim(svc, render_id, owner=lease_owner("second"), job_id="second")
    clock.advance(svc.limits.lease_ms + 1)
    done = recover.reconcile(svc, dispatched.append)
    assert done.failed == [render_id] and dispatched == [render_id]
    row = full_row(svc.db, render_id)
    assert (row["status"], row["error"], row["attempts"]) == ("failed", WORKER_LOST, 2)
    assert row["quota_refunded"] is True
    assert remaining_quota(svc, user) == 5


def test_one_attempt_configured_means_a_lost_worker_fails_the_render(
    svc: Services, clock: FakeClock
) -> None:
    svc.limits = Limits(**{**FAST_LIMITS, "max_render_attempts": 1})
    _, render_id = started(svc)
    lifecycle.claim(svc, render_id, owner=lease_owner("only"), job_id="only")
    clock.advance(svc.limits.lease_ms + 1)
    assert recover.reconcile(svc, lambda _id: None).failed == [render_id]
    assert full_row(svc.db, render_id)["error"] == WORKER_LOST


def test_a_render_past_its_timeout_fails_even_with_a_live_lease(
    svc: Services, clock: FakeClock
) -> None:
    user, render_id = started(svc)
    owner = lease_owner("slow")
    lifecycle.claim(svc, render_id, owner=owner, job_id="slow")
    clock.advance(svc.limits.render_timeout_ms)
    lifecycle.progress(svc, render_id, owner)  # the worker is alive, just too slow
    assert recover.reconcile(svc, lambda _id: None).timed_out == []
    clock.advance(1)
    assert recover.reconcile(svc, lambda _id: None).timed_out == [render_id]
    row = full_row(svc.db, render_id)
    assert (row["status"], row["error"]) == ("failed", "Render timed out after 30 seconds.")
    # The slot comes back: the render was accepted as one that fits the timeout.
    assert row["quota_refunded"] is True
    assert remaining_quota(svc, user) == 5


def test_a_pending_render_nobody_picked_up_is_dispatched_again(svc: Services) -> None:
    # ``updated_at`` is stamped with the services' clock, so the test moves that clock: no
    # sleep, and a loaded machine cannot let the interval pass between two calls.
    svc.limits = Limits(**{**FAST_LIMITS, "pending_redispatch_ms": 600})
    _, render_id = started(svc)
    dispatched: list[str] = []
    assert recover.reconcile(svc, dispatched.append).redispatched == []
    svc.clock.advance(650)  # type: ignore[attr-defined]
    assert recover.reconcile(svc, dispatched.append).redispatched == [render_id]
    assert recover.reconcile(svc, dispatched.append).redispatched == [], "once per interval"
    assert dispatched == [render_id]
    assert recover.reconcile(svc, dispatched.append, pending_age_ms=0).redispatched == [render_id]


def test_at_start_renders_of_dead_local_processes_are_taken_back_at_once(
    svc: Services,
) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    renders = [started(svc)[1] for _ in range(3)]
    owners = [
        lease_owner("gone", pid=dead.pid),  # a previous serve's worker on this host
        lease_owner("alive"),  # this very process: alive
        f"another-{HOST}:{dead.pid}:x",  # another machine: only its lease can tell
    ]
    for render_id, owner in zip(renders, owners, strict=True):
        lifecycle.claim(svc, render_id, owner=owner, job_id="j")
    dispatched: list[str] = []
    done = recover.recover_orphans(svc, dispatched.append)
    assert done.retried == [renders[0]] and dispatched == [renders[0]]
    assert [full_row(svc.db, r)["status"] for r in renders] == ["pending", "rendering", "rendering"]


def test_a_clean_shutdown_does_not_use_up_an_attempt(svc: Services) -> None:
    _, render_id = started(svc)
    owner = lease_owner("stopping")
    lifecycle.claim(svc, render_id, owner=owner, job_id="j")
    released = lifecycle.release(svc, render_id, owner=owner, count_attempt=False)
    assert released is not None
    assert (released.status, released.attempts) == ("pending", 0)
    assert lifecycle.release(svc, render_id, owner=owner) is None, "only while held"


def test_finished_renders_are_left_alone(svc: Services, clock: FakeClock) -> None:

    _, render_id = started(svc)
    lifecycle.claim(svc, render_id, owner=lease_owner("x"), job_id="x")
    assert lifecycle.fail(svc, render_id, Failure("Render cancelled.", refund=True)) is not None
    assert lifecycle.fail(svc, render_id, Failure(WORKER_LOST, refund=True)) is None, "decided once"
    clock.advance(svc.limits.render_timeout_ms + svc.limits.lease_ms)
    done = recover.reconcile(svc, lambda _id: None)
    assert done == recover.Reconciled()
    assert full_row(svc.db, render_id)["error"] == "Render cancelled."
