"""The three Celery tasks of a render in cluster mode: start a job, encode a chunk, join.

The work is :mod:`renderlab.pipeline.cluster`'s; a task builds the worker's services, sends the
next messages and maps transient failures (storage, database, broker) to Celery retries
(:func:`retries_for`). Any other failure ends the render at once, in the pipeline.
"""

from __future__ import annotations

import logging
import math
import os
from functools import partial

from celery import Celery, Task, current_app, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import OperationalError

from renderlab.limits import Limits
from renderlab.pipeline import cluster
from renderlab.pipeline.run import Faults
from renderlab.services import Services, build_services
from renderlab.storage import StorageError, StorageUnreachable
from renderlab.workers.celery_app import CHUNK, JOIN, START, send

log = logging.getLogger(__name__)

# Worth another try in a moment: storage, database or broker briefly away.
TRANSIENT = (StorageError, OperationalError, BrokerError)
_services: Services | None = None


def services() -> Services:
    """This worker process's services, built on first use: after the prefork fork, so no
    database connection is shared between processes."""
    global _services
    if _services is None:
        conf = current_app.conf
        _services = build_services(conf.renderlab_settings, conf.renderlab_limits)
    return _services


def faults(task: Task, limits: Limits) -> Faults:
    """What this task retries, whether it will retry ``exc``, and Celery's soft time limit."""
    return Faults(
        transient=TRANSIENT,
        timed_out=(SoftTimeLimitExceeded,),
        will_retry=lambda exc: task.request.retries < retries_for(limits, exc),
    )


@shared_task(name=START, bind=True)
def start_job_task(self: Task, render_id: str, job_id: str | None = None) -> None:
    """Claim the render for a job, plan its chunks and send one task per chunk. ``job_id``: a
    retry whose first run could neither plan its claim nor give it back plans for that job."""
    svc = services()
    what = f"start of render {render_id}"
    try:
        sender = partial(_send_pieces, self.app, render_id)
        cluster.start_job(svc, render_id, sender, job_id=job_id, faults=faults(self, svc.limits))
    except cluster.Unplanned as unplanned:
        cause = unplanned.__cause__
        exc = cause if isinstance(cause, Exception) else unplanned
        resume = unplanned.job_id
        if resume is None:  # given back: the next claim plans it again
            _retry(self, svc, exc, what, job_id=None)
        else:
            _retry(self, svc, exc, what, render_id=render_id, owner=unplanned.owner, job_id=resume)
    except TRANSIENT as exc:  # still pending: a retry, or else the reconciler, sends it again
        _retry(self, svc, exc, what)


def _send_pieces(app: Celery, render_id: str, owner: str, indexes: list[int]) -> None:
    """One message per chunk still to encode; none left: the join."""
    if not indexes:
        send(app, JOIN, render_id, owner)
    for index in indexes:
        send(app, CHUNK, render_id, owner, index)


@shared_task(name=CHUNK, bind=True)
def encode_chunk_task(self: Task, render_id: str, owner: str, index: int) -> None:
    """Encode one chunk to a segment in storage; the last chunk done sends the join."""
    svc = services()
    worker = f"{self.request.hostname}:{os.getpid()}"
    try:
        last = cluster.encode_chunk(
            svc, render_id, owner, index, worker=worker, faults=faults(self, svc.limits)
        )
    except TRANSIENT as exc:
        _retry(self, svc, exc, f"chunk {render_id}/{index}", render_id=render_id, owner=owner)
        return
    if last:
        send_join(self.app, svc, render_id, owner)


def send_join(app: Celery, svc: Services, render_id: str, owner: str) -> None:
    """Send the join; if the broker stays away, hand the join to the reconciler instead."""
    try:
        send(app, JOIN, render_id, owner)
    except BrokerError:
        cluster.leave_join_to_reconciler(svc, render_id, owner)


@shared_task(name=JOIN, bind=True)
def join_job_task(self: Task, render_id: str, owner: str) -> None:
    """Join the segments by stream copy, store the MP4 and complete the render."""
    svc = services()
    try:
        cluster.join_job(svc, render_id, owner, faults=faults(self, svc.limits))
    except TRANSIENT as exc:
        _retry(self, svc, exc, f"join of render {render_id}", render_id=render_id, owner=owner)


def _retry(
    task: Task, svc: Services, exc: Exception, what: str, *, render_id: str | None = None,
    owner: str | None = None, **kwargs: str | None,
) -> None:  # fmt: skip
    """Retry the task (with ``kwargs`` instead of its own, if given); once retries are spent,
    fail the render (when the task holds one) with the sentence for ``exc``."""
    limits = svc.limits
    budget = retries_for(limits, exc)
    if task.request.retries < budget:
        log.warning("%s: %s; retrying", what, exc)
        delay = limits.celery_retry_delay_s
        retry = task.retry(kwargs=kwargs or None, exc=exc, countdown=delay, max_retries=budget)
        raise retry from exc
    log.error("%s: %s; no retries left", what, exc)
    if render_id is not None and owner is not None:
        try:
            cluster.fail_job(svc, render_id, owner, exc, faults(task, limits))
        except TRANSIENT:  # still away: the render's timeout ends it (the reconciler)
            log.error("could not record the failure of render %s", render_id, exc_info=True)


def retries_for(limits: Limits, exc: BaseException) -> int:
    """How many retries ``exc`` is worth: ``limits.celery_max_retries``, more for a store that
    does not answer at all. A task that gives up on a restarting database drops the only message
    for its piece (``bench/faults.py --fault pg-restart``): database errors are retried through
    the render's timeout, an unreachable S3 endpoint through half of it (``--fault s3-down``)."""
    delay_s = max(limits.celery_retry_delay_s, 0.1)
    if isinstance(exc, OperationalError):
        waited_ms = limits.render_timeout_ms
    elif isinstance(exc, StorageUnreachable):
        waited_ms = limits.render_timeout_ms // 2
    else:
        return limits.celery_max_retries
    return limits.celery_max_retries + math.ceil(waited_ms / 1000 / delay_s)
