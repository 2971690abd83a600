"""Cluster mode: one render as chunks that any worker machine can encode.

The database is the source of truth, as in the embedded mode. A render is claimed once by a
*job* (``lease_owner = "job:<id>"``); its frame ranges become ``render_chunks`` rows; each chunk
is claimed by one worker with a lease of its own (``lease_owner = "<worker>:<pid>"``), encoded
to a segment that travels through storage, and marked done. Whoever finishes the last chunk
triggers the join. Every write is a compare-and-set on locked rows, so a redelivered or
duplicated task finds its work taken or done and does nothing.

The render's lease runs for its whole timeout from the claim (chunks may wait in a queue) and
is renewed by chunk progress; a chunk whose worker died lets its own lease lapse, and
:func:`release_lost_chunks` hands it out again (up to ``limits.max_render_attempts`` times).
Progress is the sum of the chunks' frames, written upwards only.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from renderlab import store
from renderlab.models import Render, RenderChunk
from renderlab.pipeline.claim import claim_render, owned_render
from renderlab.pipeline.failures import WORKER_LOST, LostClaim, RenderTimedOut
from renderlab.pipeline.finish import fail_in
from renderlab.pipeline.progress import percent_of
from renderlab.render import plan_chunks
from renderlab.services import Services

log = logging.getLogger(__name__)


def job_owner(job_id: str) -> str:
    return f"job:{job_id}"


def segment_key(render_id: str, index: int) -> str:
    return f"segments/{render_id}/{index:04d}.mp4"


def segment_prefix(render_id: str) -> str:
    return f"segments/{render_id}"


def claim_job(services: Services, render_id: str, job_id: str) -> Render | None:
    """``pending -> rendering`` for a cluster job, leased for the whole render timeout (its
    chunks may wait in a queue; their progress renews it); None if the render is not pending."""
    return claim_render(
        services,
        render_id,
        owner=job_owner(job_id),
        job_id=job_id,
        lease_ms=services.limits.render_timeout_ms,
    )


def plan(services: Services, render: Render) -> list[int]:
    """Chunk rows for a claimed render (kept from an earlier attempt if there are any);
    returns the indexes still to encode, empty when every segment is ready to join."""
    with services.db.transaction() as session:
        chunks = _chunks(session, render.id)
        if not chunks:
            ranges = plan_chunks(
                render.duration_in_frames,
                chunk_size=max(services.limits.chunk_frames, services.limits.min_chunk_frames),
                min_chunk_frames=services.limits.min_chunk_frames,
            )
            for index, (start, end) in enumerate(ranges):
                session.add(
                    RenderChunk(
                        render_id=render.id,
                        index=index,
                        start_frame=start,
                        end_frame=end,
                        frames_done=0,
                        status="pending",
                        attempts=0,
                    )
                )
            session.flush()
            chunks = _chunks(session, render.id)
        todo = []
        for chunk in chunks:
            if chunk.status != "complete":
                chunk.status, chunk.lease_owner, chunk.lease_expires_at = "pending", None, None
                todo.append(chunk.index)
        return todo


@dataclass(frozen=True)
class ChunkClaim:
    render: Render
    index: int
    start: int
    end: int
    worker: str


def claim_chunk(
    services: Services, render_id: str, index: int, *, owner: str, worker: str
) -> ChunkClaim | None:
    """Take chunk ``index`` for ``worker`` while job ``owner`` holds the render; None when the
    chunk is done, held by a live worker, or the render is no longer the job's."""
    now = services.clock()
    with services.db.transaction() as session:
        try:
            render = owned_render(session, render_id, owner)
        except LostClaim:
            return None
        chunk = session.get(RenderChunk, (render_id, index), with_for_update=True)
        if chunk is None or chunk.status == "complete":
            return None
        if chunk.status == "rendering" and (chunk.lease_expires_at or 0) > now:
            return None
        chunk.status = "rendering"
        chunk.attempts += 1
        chunk.lease_owner = worker
        chunk.lease_expires_at = now + services.limits.lease_ms
        session.flush()
        return ChunkClaim(render, index, chunk.start_frame, chunk.end_frame, worker)


class ChunkProgress:
    """The renderer's ``on_progress`` for one chunk: writes its frames and the render's summed
    progress at the configured cadence, renews both leases, and stops the encoder (by raising)
    when the render was cancelled, handed on, or ran out of time."""

    def __init__(self, services: Services, claim: ChunkClaim, owner: str) -> None:
        self._services = services
        self._claim = claim
        self._owner = owner
        self._interval = services.limits.progress_min_interval_ms / 1000
        started = claim.render.started_at or services.clock()
        remaining = started + services.limits.render_timeout_ms - services.clock()
        self._deadline = time.monotonic() + max(0, remaining) / 1000
        self._last = 0.0

    def __call__(self, done: int, _total: int) -> None:
        if time.monotonic() >= self._deadline:
            raise RenderTimedOut(self._claim.render.id)
        if time.monotonic() - self._last >= self._interval:
            self.write(done)

    def write(self, done: int) -> None:
        self._last = time.monotonic()
        claim, services = self._claim, self._services
        now = services.clock()
        with services.db.transaction() as session:
            render = owned_render(session, claim.render.id, self._owner)
            chunk = _owned_chunk(session, claim)
            chunk.frames_done = max(chunk.frames_done, min(done, claim.end - claim.start))
            chunk.lease_expires_at = now + services.limits.lease_ms
            session.flush()
            _sum_progress(session, services, render, now)


def finish_chunk(services: Services, claim: ChunkClaim, owner: str, key: str) -> bool:
    """Record the chunk's segment; True when it was the last one (the caller joins)."""
    now = services.clock()
    with services.db.transaction() as session:
        render = owned_render(session, claim.render.id, owner)
        chunk = _owned_chunk(session, claim)
        chunk.frames_done = claim.end - claim.start
        chunk.status = "complete"
        chunk.segment_key = key
        chunk.lease_expires_at = None
        session.flush()
        _sum_progress(session, services, render, now)
        left = session.execute(
            select(func.count())
            .select_from(RenderChunk)
            .where(RenderChunk.render_id == render.id, RenderChunk.status != "complete")
        ).scalar_one()
        return left == 0


def segments(services: Services, render_id: str) -> list[str]:
    """The segment keys of a render, in frame order."""
    with services.db.session() as session:
        return [chunk.segment_key or "" for chunk in _chunks(session, render_id)]


def chunk_workers(services: Services, render_id: str) -> dict[int, str | None]:
    """Who encoded each chunk last (kept after completion, for operators and tests)."""
    with services.db.session() as session:
        return {chunk.index: chunk.lease_owner for chunk in _chunks(session, render_id)}


def release_lost_chunks(services: Services) -> list[tuple[str, str, int]]:
    """Chunks whose worker stopped renewing: back to pending, as ``(render_id, job owner,
    index)`` to hand out again; a chunk lost too often fails its render (with a refund)."""
    now = services.clock()
    with services.db.session() as session:
        lost = session.execute(
            select(RenderChunk.render_id, RenderChunk.index).where(
                RenderChunk.status == "rendering", RenderChunk.lease_expires_at < now
            )
        ).all()
    again: list[tuple[str, str, int]] = []
    for render_id, index in lost:
        with services.db.transaction() as session:
            render = store.get_render_internal(session, render_id, lock=True)
            chunk = session.get(RenderChunk, (render_id, index), with_for_update=True)
            if chunk is None or chunk.status != "rendering" or (chunk.lease_expires_at or 0) >= now:
                continue
            if render.status != "rendering" or render.lease_owner is None:
                chunk.status, chunk.lease_expires_at = "failed", None
                continue
            if chunk.attempts >= services.limits.max_render_attempts:
                log.error("chunk %s/%d lost its worker again; failing the render", render_id, index)
                chunk.status, chunk.lease_expires_at = "failed", None
                fail_in(session, services, render, WORKER_LOST, refund=True)
                continue
            log.warning(
                "chunk %s/%d lost its worker %s; handing it out again",
                render_id,
                index,
                chunk.lease_owner,
            )
            chunk.status, chunk.lease_expires_at = "pending", None
            again.append((render_id, render.lease_owner, index))
    return again


def download_segments(services: Services, render_id: str, workdir: Path) -> list[Path]:
    paths = []
    for index, key in enumerate(segments(services, render_id)):
        paths.append(services.storage.get_file(key, workdir / f"{index:04d}.mp4"))
    return paths


def _chunks(session: Session, render_id: str) -> list[RenderChunk]:
    statement = (
        select(RenderChunk).where(RenderChunk.render_id == render_id).order_by(RenderChunk.index)
    )
    return list(session.execute(statement).scalars())


def _owned_chunk(session: Session, claim: ChunkClaim) -> RenderChunk:
    chunk = session.get(
        RenderChunk, (claim.render.id, claim.index), with_for_update=True, populate_existing=True
    )
    if chunk is None or chunk.status != "rendering" or chunk.lease_owner != claim.worker:
        raise LostClaim(claim.render.id, "handed to another worker")
    return chunk


def _sum_progress(session: Session, services: Services, render: Render, now: int) -> None:
    done = session.execute(
        select(func.coalesce(func.sum(RenderChunk.frames_done), 0)).where(
            RenderChunk.render_id == render.id
        )
    ).scalar_one()
    progress = percent_of(int(done), render.duration_in_frames)
    changes: dict[str, int] = {
        "heartbeat_at": now,
        "lease_expires_at": max(render.lease_expires_at or 0, now + services.limits.lease_ms),
    }
    if progress > render.progress:
        changes["progress"] = progress
    store.update_render(session, render.id, **changes)


def release_chunk(services: Services, claim: ChunkClaim) -> None:
    """Give a chunk back (its task will retry it) without waiting for its lease to lapse."""
    with services.db.transaction() as session:
        chunk = session.get(RenderChunk, (claim.render.id, claim.index), with_for_update=True)
        if chunk is not None and chunk.status == "rendering" and chunk.lease_owner == claim.worker:
            chunk.status, chunk.lease_expires_at = "pending", None
