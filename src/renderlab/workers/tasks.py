"""The three tasks of a render in cluster mode: start (claim + fan out), chunk, join.

Each task is idempotent: it first takes its piece of work by a compare-and-set in the database
and does nothing if the piece is done or held by a live worker, so a redelivered or duplicate
message costs one query. Only transient failures (storage, database) are retried; a
composition that cannot render fails the render at once.
"""

from __future__ import annotations

import logging
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

from celery import Task, current_app, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import OperationalError

from renderlab import store
from renderlab.pipeline import chunked
from renderlab.pipeline.failures import LostClaim, RenderTimedOut, classify, timed_out_message
from renderlab.pipeline.finish import complete_render, fail_render
from renderlab.pipeline.run import VIDEO_CONTENT_TYPE, load_props, render_range, store_output
from renderlab.render import join_segments
from renderlab.services import Services, build_services
from renderlab.storage import StorageError

log = logging.getLogger(__name__)

START, CHUNK, JOIN = "renderlab.start_render", "renderlab.render_chunk", "renderlab.join_render"
TRANSIENT = (StorageError, OperationalError)

_services: Services | None = None


def services() -> Services:
    """This worker process's services, built on first use (after the prefork fork)."""
    global _services
    if _services is None:
        conf = current_app.conf
        _services = build_services(conf.renderlab_settings, conf.renderlab_limits)
    return _services


@shared_task(name=START, bind=True)
def start_render(self: Task, render_id: str) -> None:
    svc = services()
    job_id = uuid.uuid4().hex
    render = chunked.claim_job(svc, render_id, job_id)
    if render is None:
        return
    owner = chunked.job_owner(job_id)
    todo = chunked.plan(svc, render)
    log.info("render %s: job %s, %d chunks to encode", render_id, job_id, len(todo))
    if not todo:
        self.app.send_task(JOIN, args=[render_id, owner])
    for index in todo:
        self.app.send_task(CHUNK, args=[render_id, owner, index])


@shared_task(name=CHUNK, bind=True)
def render_chunk(self: Task, render_id: str, owner: str, index: int) -> None:
    svc = services()
    worker = f"{self.request.hostname}:{os.getpid()}"
    claim = chunked.claim_chunk(svc, render_id, index, owner=owner, worker=worker)
    if claim is None:
        return
    try:
        props = load_props(svc, claim.render)
        progress = chunked.ChunkProgress(svc, claim, owner)
        with tempfile.TemporaryDirectory(prefix="renderlab-chunk-") as work:
            segment = Path(work) / "segment.mp4"
            render_range(props, claim.render, claim.start, claim.end, segment, progress)
            key = chunked.segment_key(render_id, index)
            svc.storage.put_file(key, segment, VIDEO_CONTENT_TYPE)
        last = chunked.finish_chunk(svc, claim, owner, key)
    except LostClaim:
        log.info("chunk %s/%d stopped: the render is no longer this job's", render_id, index)
        return
    except TRANSIENT as exc:
        if self.request.retries < svc.limits.celery_max_retries:
            chunked.release_chunk(svc, claim)
            log.warning("chunk %s/%d: %s; retrying", render_id, index, exc)
            raise self.retry(exc=exc, countdown=svc.limits.celery_retry_delay_s) from exc
        _fail(svc, render_id, owner, exc)
        return
    except Exception as exc:  # every other failure ends the render with a sentence
        _fail(svc, render_id, owner, exc)
        return
    if last:
        self.app.send_task(JOIN, args=[render_id, owner])


@shared_task(name=JOIN, bind=True)
def join_render(self: Task, render_id: str, owner: str) -> None:
    svc = services()
    with svc.db.transaction() as session:  # committed, not rolled back: the row stays loaded
        render = store.get_render_internal(session, render_id)
    if render.status != "rendering" or render.lease_owner != owner:
        return
    try:
        with tempfile.TemporaryDirectory(prefix="renderlab-join-") as work:
            paths = chunked.download_segments(svc, render_id, Path(work))
            video = join_segments(paths, Path(work) / "video.mp4", fps=render.fps)
            key, size = store_output(svc, render, video)
        complete_render(svc, render, owner, output_key=key, output_size=size)
    except LostClaim:
        return
    except TRANSIENT as exc:
        if self.request.retries < svc.limits.celery_max_retries:
            raise self.retry(exc=exc, countdown=svc.limits.celery_retry_delay_s) from exc
        _fail(svc, render_id, owner, exc)
        return
    except Exception as exc:
        _fail(svc, render_id, owner, exc)
        return
    log.info("render %s complete (%d bytes)", render_id, size)
    try:
        svc.storage.delete_prefix(chunked.segment_prefix(render_id))
    except StorageError:
        log.warning("could not remove the segments of render %s", render_id, exc_info=True)


def _fail(svc: Services, render_id: str, owner: str, exc: BaseException) -> Any:
    if isinstance(exc, SoftTimeLimitExceeded):
        exc = RenderTimedOut(render_id)
    failure = classify(exc, svc.limits)
    if isinstance(exc, RenderTimedOut):
        failure = type(failure)(timed_out_message(svc.limits), refund=False)
    log.error("render %s failed: %s", render_id, failure.message, exc_info=exc)
    return fail_render(svc, render_id, failure.message, refund=failure.refund, owner=owner)
