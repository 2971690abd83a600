"""Cluster mode's three pieces of work, run by whichever worker got the message: start a job
(claim and plan its chunks), encode one chunk, join the segments.

Celery-free: ``workers/tasks.py`` calls these and only maps transient errors (``Faults``) to
retries; the messages to send next are handed to the ``send_*`` callbacks the task gives.
Each piece first takes its work by a compare-and-set (:mod:`.lifecycle`, :mod:`.chunked`), so
a redelivered or duplicate message costs one query, and ends through :func:`.run.run_piece`,
exactly as a whole render does in the embedded mode.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy.exc import OperationalError

from renderlab import store
from renderlab.models import Render, RenderStatus
from renderlab.pipeline import chunked, lifecycle, outputs
from renderlab.pipeline.failures import LostClaim
from renderlab.pipeline.measure import render_context
from renderlab.pipeline.progress import ProgressReporter
from renderlab.pipeline.run import (
    IN_PROCESS,
    Faults,
    fail_piece,
    load_props,
    render_range,
    run_piece,
    store_output,
)
from renderlab.render import join_segments
from renderlab.services import Services
from renderlab.storage import StorageError
from renderlab.store import RenderSnapshot

log = logging.getLogger(__name__)
T = TypeVar("T")


class Unplanned(Exception):
    """A transient error stopped the plan of a claimed render. ``job_id`` is set when the claim
    could not be given back either: the retry plans for that job rather than leaving the render
    held by nobody until its timeout."""

    def __init__(self, job_id: str | None, owner: str) -> None:
        super().__init__("the render's chunks could not be planned")
        self.job_id = job_id
        self.owner = owner


def start_job(
    services: Services,
    render_id: str,
    send_pieces: Callable[[str, list[int]], None],
    *,
    job_id: str | None = None,
    faults: Faults = IN_PROCESS,
) -> None:
    """Claim the render for a new job (or resume ``job_id``), plan its chunks and hand them to
    ``send_pieces(owner, indexes)`` (no index: every segment is ready to join).

    A transient error before the claim propagates (the render is still pending); after it,
    the claim is given back (not counted as an attempt) and :class:`Unplanned` is raised.
    """
    resumed = job_id is not None
    job_id = job_id or uuid.uuid4().hex
    owner = chunked.job_owner(job_id)
    render: Render | RenderSnapshot | None
    if resumed:
        with services.db.read_one() as connection:
            render = store.find(connection, render_id)
    else:
        render = chunked.claim_job(services, render_id, job_id)
    if render is None:
        return
    claimed = render

    def plan() -> None:
        todo = chunked.plan(services, claimed, owner)
        log.info("render %s: job %s, %d chunks to encode", render_id, job_id, len(todo))
        send_pieces(owner, todo)

    try:
        with render_context(claimed):
            _run(services, render_id, owner, plan, faults)
    except faults.transient as exc:
        try:
            lifecycle.release(services, render_id, owner=owner, count_attempt=False)
        except faults.transient:  # the database is away: keep the claim, plan it on the retry
            raise Unplanned(job_id, owner) from exc
        raise Unplanned(None, owner) from exc


def encode_chunk(
    services: Services,
    render_id: str,
    owner: str,
    index: int,
    *,
    worker: str,
    faults: Faults = IN_PROCESS,
) -> bool:
    """Encode chunk ``index`` of job ``owner``'s render to a segment in storage; True when it
    was the last one to finish (the caller sends the join)."""
    claim = chunked.claim_chunk(services, render_id, index, owner=owner, worker=worker)
    if claim is None:
        return False
    held = claim

    def encode() -> bool:
        props = load_props(services, held.render)
        reporter = chunked.ChunkReporter(services, held)
        with reporter.running(), tempfile.TemporaryDirectory(prefix="renderlab-chunk-") as work:
            fmt = outputs.output_format(held.render)
            segment = Path(work) / f"segment{fmt.extension}"
            render_range(props, held.render, held.start, held.end, segment, reporter.frames)
            reporter.flush()
            key = chunked.segment_key(render_id, index, fmt.extension)
            services.storage.put_file(key, segment, fmt.content_type)
            reporter.check()
        return chunked.finish_chunk(services, held, key)

    try:
        with render_context(held.render):
            last = _run(services, render_id, owner, encode, faults)
    except faults.transient as exc:
        if faults.will_retry(exc):
            # With the database away this fails too: then the chunk keeps its lease, which
            # lapses, and the reconciler hands the chunk out again.
            with contextlib.suppress(*faults.transient):
                chunked.release_chunk(services, held)
        raise
    return bool(last)


def join_job(
    services: Services, render_id: str, owner: str, *, faults: Faults = IN_PROCESS
) -> None:
    """Join job ``owner``'s segments, store the output and its poster, complete the render."""
    with services.db.read_one() as connection:
        render = store.find(connection, render_id)
    keys = chunked.segments(services, render_id)
    if render is None or render.status != RenderStatus.RENDERING or render.lease_owner != owner:
        return
    if not keys:
        return
    # From here the job is running, not queued: its lease goes down to ``limits.lease_ms``,
    # renewed by a heartbeat, so a worker killed while joining is noticed within a lease and
    # the render is joined again (its segments are kept) rather than timing out.
    reporter = ProgressReporter(services, render, owner)
    joined = render
    stored: list[str] = []

    def join() -> int:
        reporter.flush()
        with reporter.running(), tempfile.TemporaryDirectory(prefix="renderlab-join-") as work:
            paths = chunked.download_segments(services, keys, Path(work))
            video = joined_output(joined, paths, Path(work))
            reporter.check()
            key, size = store_output(services, joined, video)
            stored.append(key)
            props = load_props(services, joined)
            poster = outputs.store_poster(services, joined, props, Path(work))
            stored.append(poster)
        lifecycle.complete(
            services, render_id, owner, output_key=key, output_size=size, poster_key=poster
        )
        return size

    with render_context(render):
        size = _run(services, render_id, owner, join, faults, stored=stored)
    if size is not None:
        log.info("render %s complete (%d bytes)", render_id, size)
        remove_segments(services, render_id)


def joined_output(render: Render | RenderSnapshot, paths: list[Path], work: Path) -> Path:
    """The render's output from its segments in frame order: joined by stream copy, or the one
    segment itself for a codec rendered whole (vp9, gif: planned as one chunk)."""
    fmt = outputs.output_format(render)
    if len(paths) == 1 and not fmt.joinable:
        return paths[0]
    return join_segments(paths, work / f"output{fmt.extension}", fps=render.fps, codec=fmt.codec)


def leave_join_to_reconciler(services: Services, render_id: str, owner: str) -> None:
    """The join could not be sent: the job's lease goes down to ``limits.lease_ms``, lapses, and
    the render is claimed again with every segment done, so only the join runs."""
    log.warning("could not send the join of render %s; the reconciler will", render_id)
    with contextlib.suppress(LostClaim, OperationalError):
        lifecycle.progress(services, render_id, owner)


def fail_job(
    services: Services, render_id: str, owner: str, exc: BaseException, faults: Faults
) -> None:
    """End ``owner``'s render with the sentence for ``exc`` (a transient error whose retries are
    spent) and drop its segments."""
    if fail_piece(services, render_id, owner, exc, faults) is not None:
        remove_segments(services, render_id)


def remove_segments(services: Services, render_id: str) -> None:
    try:
        services.storage.delete_prefix(chunked.segment_prefix(render_id))
    except StorageError:
        log.warning("could not remove the segments of render %s", render_id, exc_info=True)


def _run(
    services: Services,
    render_id: str,
    owner: str,
    work: Callable[[], T],
    faults: Faults,
    *,
    stored: list[str] | None = None,
) -> T | None:
    """:func:`run_piece` for a piece of job ``owner``: a failed render's segments are of no use
    to anyone, so they go when it stops failed, with the files a join ``stored`` after the
    render was failed (a cancel while it uploaded)."""

    def cleanup(status: str) -> None:
        if status != RenderStatus.FAILED:
            return
        remove_segments(services, render_id)
        outputs.discard(services, *(stored or ()))

    return run_piece(services, render_id, owner, work, faults=faults, on_stopped=cleanup)
