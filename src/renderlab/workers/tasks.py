"""The three tasks of a render in cluster mode: start (claim + fan out), chunk, join.

Each task is idempotent: it first takes its piece of work by a compare-and-set in the database
and does nothing if the piece is done or held by a live worker, so a redelivered or duplicate
message costs one query. Only transient failures (storage, database, broker) are retried, a
few times (``limits.celery_max_retries``), a database that is away for as long as the
render's timeout and an S3 endpoint that does not answer for half of it (:func:`retries_for`);
a composition that cannot render fails the render at once with the sentence
:func:`~renderlab.pipeline.failures.classify` gives it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
import uuid
from pathlib import Path

from celery import Celery, Task, current_app, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import OperationalError

from renderlab import store
from renderlab.limits import Limits
from renderlab.pipeline import chunked
from renderlab.pipeline.claim import renew_lease
from renderlab.pipeline.failures import LostClaim, RenderTimedOut, classify
from renderlab.pipeline.finish import complete_render, fail_render
from renderlab.pipeline.progress import ProgressReporter
from renderlab.pipeline.recover import release_lost
from renderlab.pipeline.run import VIDEO_CONTENT_TYPE, load_props, render_range, store_output
from renderlab.render import join_segments
from renderlab.services import Services, build_services
from renderlab.storage import StorageError, StorageUnreachable
from renderlab.workers.celery_app import CHUNK, JOIN, START, send

log = logging.getLogger(__name__)

TRANSIENT = (StorageError, OperationalError, BrokerError)
"""Worth another try in a moment: storage, database or broker briefly away."""

_services: Services | None = None


def services() -> Services:
    """This worker process's services, built on first use: after the prefork fork, so no
    database connection is shared between processes."""
    global _services
    if _services is None:
        conf = current_app.conf
        _services = build_services(conf.renderlab_settings, conf.renderlab_limits)
    return _services


@shared_task(name=START, bind=True)
def start_render(self: Task, render_id: str, job_id: str | None = None) -> None:
    """Claim the render for a new job, plan its chunks and send one task per chunk.

    ``job_id`` comes with a retry whose first run claimed the render but could neither plan it
    nor give it back (the database away): the retry plans for that job instead of leaving the
    render held by nobody until its timeout fails it."""
    svc = services()
    resumed = job_id is not None
    job_id = job_id or uuid.uuid4().hex
    owner = chunked.job_owner(job_id)
    try:
        if resumed:
            with svc.db.transaction() as session:  # committed, so the row stays loaded
                render = store.find_render_internal(session, render_id)
        else:
            render = chunked.claim_job(svc, render_id, job_id)
    except TRANSIENT as exc:  # still pending: a retry, or else the reconciler, sends it again
        _retry(self, svc, exc, f"start of render {render_id}")
        return
    if render is None:
        return
    try:
        todo = chunked.plan(svc, render, owner)
        log.info("render %s: job %s, %d chunks to encode", render_id, job_id, len(todo))
        if not todo:
            send(self.app, JOIN, render_id, owner)
        for index in todo:
            send(self.app, CHUNK, render_id, owner, index)
    except LostClaim:
        return
    except TRANSIENT as exc:
        what = f"start of render {render_id}"
        try:
            # Give the render back (not counted as an attempt): the next claim plans it again.
            release_lost(svc, render_id, owner=owner, count_attempt=False)
        except TRANSIENT:  # the database is away: keep the claim, plan it on the retry
            _retry(self, svc, exc, what, render_id=render_id, owner=owner, job_id=job_id)
            return
        _retry(self, svc, exc, what, job_id=None)
    except Exception as exc:
        _fail(svc, render_id, owner, exc)


@shared_task(name=CHUNK, bind=True)
def render_chunk(self: Task, render_id: str, owner: str, index: int) -> None:
    """Encode one chunk to a segment in storage; the last chunk done sends the join."""
    svc = services()
    worker = f"{self.request.hostname}:{os.getpid()}"
    try:
        claim = chunked.claim_chunk(svc, render_id, index, owner=owner, worker=worker)
    except TRANSIENT as exc:
        _retry(self, svc, exc, f"chunk {render_id}/{index}")
        return
    if claim is None:
        return
    try:
        props = load_props(svc, claim.render)
        reporter = chunked.ChunkReporter(svc, claim)
        with reporter.running(), tempfile.TemporaryDirectory(prefix="renderlab-chunk-") as work:
            segment = Path(work) / "segment.mp4"
            render_range(props, claim.render, claim.start, claim.end, segment, reporter.frames)
            reporter.flush()
            key = chunked.segment_key(render_id, index)
            svc.storage.put_file(key, segment, VIDEO_CONTENT_TYPE)
            reporter.check()
        last = chunked.finish_chunk(svc, claim, key)
    except LostClaim:
        log.info("chunk %s/%d stopped: the render is no longer this job's", render_id, index)
        return
    except TRANSIENT as exc:
        if self.request.retries < retries_for(svc.limits, exc):
            # With the database away this fails too: then the chunk keeps its lease, which
            # lapses, and the reconciler hands the chunk out again.
            with contextlib.suppress(*TRANSIENT):
                chunked.release_chunk(svc, claim)
        _retry(self, svc, exc, f"chunk {render_id}/{index}", render_id=render_id, owner=owner)
        return
    except Exception as exc:  # every other failure ends the render with a sentence
        _fail(svc, render_id, owner, exc)
        return
    if last:
        _send_join(self.app, svc, render_id, owner)


def _send_join(app: Celery, svc: Services, render_id: str, owner: str) -> None:
    """Send the join; if the broker stays away, hand the join to the reconciler instead: the
    job's lease goes down to ``limits.lease_ms``, lapses, and the render is claimed again with
    every segment done, so only the join runs."""
    try:
        send(app, JOIN, render_id, owner)
    except BrokerError:
        log.warning("could not send the join of render %s; the reconciler will", render_id)
        with contextlib.suppress(LostClaim, OperationalError):
            renew_lease(svc, render_id, owner)


@shared_task(name=JOIN, bind=True)
def join_render(self: Task, render_id: str, owner: str) -> None:
    """Join the segments by stream copy, store the MP4 and complete the render."""
    svc = services()
    try:
        with svc.db.transaction() as session:  # committed, so the row stays loaded
            render = store.find_render_internal(session, render_id)
        keys = chunked.segments(svc, render_id)
    except TRANSIENT as exc:
        _retry(self, svc, exc, f"join of render {render_id}")
        return
    if render is None or render.status != "rendering" or render.lease_owner != owner or not keys:
        return
    # From here the job is running, not queued: its lease goes down to ``limits.lease_ms``,
    # renewed by a heartbeat, so a worker killed while joining is noticed within a lease and
    # the render is joined again (its segments are kept) rather than timing out.
    reporter = ProgressReporter(svc, render, owner)
    try:
        reporter.flush()
        with reporter.running(), tempfile.TemporaryDirectory(prefix="renderlab-join-") as work:
            paths = chunked.download_segments(svc, keys, Path(work))
            video = join_segments(paths, Path(work) / "video.mp4", fps=render.fps)
            reporter.check()
            key, size = store_output(svc, render, video)
        complete_render(svc, render, owner, output_key=key, output_size=size)
    except LostClaim:
        return
    except TRANSIENT as exc:
        _retry(self, svc, exc, f"join of render {render_id}", render_id=render_id, owner=owner)
        return
    except Exception as exc:
        _fail(svc, render_id, owner, exc)
        return
    log.info("render %s complete (%d bytes)", render_id, size)
    _remove_segments(svc, render_id)


def _retry(
    task: Task,
    svc: Services,
    exc: BaseException,
    what: str,
    *,
    render_id: str | None = None,
    owner: str | None = None,
    **kwargs: str | None,
) -> None:
    """Retry the task in ``limits.celery_retry_delay_s`` (with ``kwargs`` instead of its own, if
    given); once retries are spent, fail the render (when the task holds one) with the sentence
    for ``exc``."""
    limits = svc.limits
    budget = retries_for(limits, exc)
    if task.request.retries < budget:
        log.warning("%s: %s; retrying", what, exc)
        raise task.retry(
            kwargs=kwargs or None,
            exc=exc,
            countdown=limits.celery_retry_delay_s,
            max_retries=budget,
        ) from exc
    log.error("%s: %s; no retries left", what, exc)
    if render_id is not None and owner is not None:
        try:
            _fail(svc, render_id, owner, exc)
        except TRANSIENT:  # still away: the render's timeout ends it (the reconciler)
            log.error("could not record the failure of render %s", render_id, exc_info=True)


def retries_for(limits: Limits, exc: BaseException) -> int:
    """How many retries ``exc`` is worth: ``limits.celery_max_retries``, and more for a store
    that does not answer at all.

    A database restart or failover takes seconds. A chunk or join task that gives up sooner
    drops the only message for its piece (it could not write anything, the database being
    away), and its render then waits for its timeout and fails as "timed out", without a
    refund: measured with ``bench/faults.py --fault pg-restart``. So database errors are retried
    through the render's timeout; each retry is one claim that does nothing once the render
    has ended. An unreachable S3 endpoint is retried through half the timeout: a 5-second
    outage failed 7 renders of 50 with two retries (``--fault s3-down``), and a longer one
    still ends the render with the storage sentence and a refund before the timeout would."""
    delay_s = max(limits.celery_retry_delay_s, 0.1)
    if isinstance(exc, OperationalError):
        waited_ms = limits.render_timeout_ms
    elif isinstance(exc, StorageUnreachable):
        waited_ms = limits.render_timeout_ms // 2
    else:
        return limits.celery_max_retries
    return limits.celery_max_retries + math.ceil(waited_ms / 1000 / delay_s)


def _fail(svc: Services, render_id: str, owner: str, exc: BaseException) -> None:
    """End ``owner``'s render with the user's sentence for ``exc`` and drop its segments."""
    if isinstance(exc, SoftTimeLimitExceeded):
        exc = RenderTimedOut(render_id)
    failure = classify(exc, svc.limits)
    log.error("render %s failed: %s", render_id, failure.message, exc_info=exc)
    if fail_render(svc, render_id, failure.message, refund=failure.refund, owner=owner):
        _remove_segments(svc, render_id)


def _remove_segments(svc: Services, render_id: str) -> None:
    try:
        svc.storage.delete_prefix(chunked.segment_prefix(render_id))
    except StorageError:
        log.warning("could not remove the segments of render %s", render_id, exc_info=True)
