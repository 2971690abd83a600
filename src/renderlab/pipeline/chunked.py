"""Cluster mode: one render as chunks that any worker machine can encode.

The database is the source of truth, as in the embedded mode. A render is claimed once by a
*job* (``lease_owner = "job:<id>"``); its frame ranges become ``render_chunks`` rows; each chunk
is claimed by one worker with a lease of its own (``lease_owner = "<worker>:<pid>"``, kept after
the chunk is done so operators can see who encoded what), encoded to a segment that travels
through storage, and marked done. Whoever finishes the last chunk triggers the join. Every
write is a compare-and-set on locked rows (the render's row first, then the chunk's, always in
that order), so a redelivered or duplicated task finds its work taken or done and does nothing.

The render's lease runs for its whole timeout from the claim (its chunks may wait in the queue
behind other renders' chunks, and nobody renews a lease from a queue) and is renewed by chunk
progress; a chunk whose worker died lets its own, short lease lapse, and
:func:`release_lost_chunks` hands it out again (up to ``limits.max_render_attempts`` claims).
Progress is the sum of the chunks' frames, written upwards only: a chunk run again after its
worker died keeps the frames its first run reported until the new run passes them.

A message can also be lost with nobody holding anything: a broker restarted without
persistence forgets the chunk and join messages it had queued. :func:`resend_lost_messages`
finds the running renders where nothing has moved for ``limits.pending_redispatch_ms`` (chunks
still pending, or every chunk done and no join under way) and sends those messages again;
duplicates are harmless, since every claim is a compare-and-set.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from renderlab import store
from renderlab.limits import Limits
from renderlab.models import Render, RenderChunk, RenderStatus
from renderlab.pipeline import failures, lifecycle
from renderlab.pipeline.failures import LostClaim
from renderlab.pipeline.progress import LeaseReporter, percent_of
from renderlab.render import plan_chunks
from renderlab.render.formats import get_format
from renderlab.services import Services
from renderlab.store import RenderSnapshot

log = logging.getLogger(__name__)


def job_owner(job_id: str) -> str:
    """The render's ``lease_owner`` while a cluster job holds it."""
    return f"job:{job_id}"


def segment_prefix(render_id: str) -> str:
    return f"segments/{render_id}"


def segment_key(render_id: str, index: int, extension: str = ".mp4") -> str:
    """Where chunk ``index`` is kept until the join; ``extension`` is the codec's (``.mov``)."""
    return f"{segment_prefix(render_id)}/{index:04d}{extension}"


def claim_job(services: Services, render_id: str, job_id: str) -> Render | None:
    """``pending -> rendering`` for a cluster job, leased for the whole render timeout (its
    chunks may wait in a queue; their progress renews it); None if the render is not pending."""
    return lifecycle.claim(
        services,
        render_id,
        owner=job_owner(job_id),
        job_id=job_id,
        lease_ms=services.limits.render_timeout_ms,
    )


def plan(services: Services, render: Render | RenderSnapshot, owner: str) -> list[int]:
    """Chunk rows for ``owner``'s render (an earlier attempt's are kept, with their finished
    segments); returns the indexes still to encode, empty when every segment is ready to join.
    :class:`LostClaim` if the render is no longer ``owner``'s."""
    limits = services.limits
    now = services.clock()
    with services.db.transaction() as session:
        lifecycle.owned(session, render.id, owner)
        chunks = _chunks(session, render.id, lock=True)
        if not chunks:
            ranges = frame_ranges(render, limits)
            chunks = [
                RenderChunk(
                    render_id=render.id,
                    index=index,
                    start_frame=start,
                    end_frame=end,
                    frames_done=0,
                    status=RenderStatus.PENDING.value,
                    attempts=0,
                    updated_at=now,
                )
                for index, (start, end) in enumerate(ranges)
            ]
            session.add_all(chunks)
        todo = []
        for chunk in chunks:
            if chunk.status != RenderStatus.COMPLETE:
                # A chunk an earlier job's worker still holds is taken from it: that worker
                # learns at its next write (the render is no longer its job's) and stops.
                _set(chunk, now, status=RenderStatus.PENDING, lease_owner=None)
                todo.append(chunk.index)
        return todo


def frame_ranges(render: Render | RenderSnapshot, limits: Limits) -> list[tuple[int, int]]:
    """The render's chunks: ``limits.chunk_frames`` each, or one of the whole range for a codec
    whose segments cannot be joined by stream copy (vp9, gif)."""
    if not get_format(render.codec or "h264").joinable:
        return [(0, render.duration_in_frames)]
    return plan_chunks(
        render.duration_in_frames,
        chunk_size=max(limits.chunk_frames, limits.min_chunk_frames),
        min_chunk_frames=limits.min_chunk_frames,
    )


@dataclass(frozen=True)
class ChunkClaim:
    """A chunk held by ``worker`` for the job ``owner``."""

    render: Render
    owner: str
    index: int
    start: int
    end: int
    worker: str

    @property
    def frames(self) -> int:
        return self.end - self.start


def claim_chunk(
    services: Services, render_id: str, index: int, *, owner: str, worker: str
) -> ChunkClaim | None:
    """Take chunk ``index`` for ``worker`` while job ``owner`` holds the render; None when the
    chunk is done, held by a live worker, or the render is no longer the job's."""
    now = services.clock()
    with services.db.transaction() as session:
        try:
            render = lifecycle.owned(session, render_id, owner)
        except LostClaim:
            return None
        chunk = _chunk(session, render_id, index)
        if chunk is None or chunk.status in (RenderStatus.COMPLETE, RenderStatus.FAILED):
            return None
        if chunk.status == RenderStatus.RENDERING and (chunk.lease_expires_at or 0) > now:
            return None
        _set(
            chunk,
            now,
            status=RenderStatus.RENDERING,
            attempts=chunk.attempts + 1,
            lease_owner=worker,
            lease_expires_at=now + services.limits.lease_ms,
        )
        session.flush()
        return ChunkClaim(render, owner, index, chunk.start_frame, chunk.end_frame, worker)


def record_progress(services: Services, claim: ChunkClaim, frames_done: int) -> int:
    """Write the chunk's frames (never fewer than stored), renew both leases and raise the
    render's summed progress if it grew; returns the render's progress. :class:`LostClaim`
    when the chunk or the render is no longer this worker's."""
    now = services.clock()
    with services.db.transaction() as session:
        render, chunk = _owned(session, claim)
        done = max(chunk.frames_done, min(frames_done, claim.frames))
        _set(chunk, now, frames_done=done, lease_expires_at=now + services.limits.lease_ms)
        session.flush()
        return _sum_progress(session, services, render, now)


def finish_chunk(services: Services, claim: ChunkClaim, key: str) -> bool:
    """Record the chunk's stored segment; True when it was the last one (the caller joins).

    The render's row is locked first, so of two chunks finishing at once exactly one sees
    none left."""
    now = services.clock()
    with services.db.transaction() as session:
        render, chunk = _owned(session, claim)
        _set(
            chunk,
            now,
            frames_done=claim.frames,
            status=RenderStatus.COMPLETE,
            segment_key=key,
        )
        session.flush()
        _sum_progress(session, services, render, now)
        left = session.execute(
            select(func.count())
            .select_from(RenderChunk)
            .where(RenderChunk.render_id == render.id, RenderChunk.status != RenderStatus.COMPLETE)
        ).scalar_one()
        return left == 0


def release_chunk(services: Services, claim: ChunkClaim) -> None:
    """Give a chunk back at once (its task will retry it) instead of letting its lease lapse;
    the claim is not counted against the chunk's attempts."""
    now = services.clock()
    with services.db.transaction() as session:
        chunk = _chunk(session, claim.render.id, claim.index)
        held = chunk is not None and chunk.lease_owner == claim.worker
        if chunk is not None and held and chunk.status == RenderStatus.RENDERING:
            _set(chunk, now, status=RenderStatus.PENDING, attempts=max(0, chunk.attempts - 1))


def release_lost_chunks(services: Services) -> list[tuple[str, str, int]]:
    """Chunks of running renders whose worker stopped renewing: back to pending, returned as
    ``(render_id, job owner, index)`` to hand out again; a chunk claimed
    ``limits.max_render_attempts`` times fails its render (with a refund: our fault)."""
    now = services.clock()
    with services.db.session() as session:
        # Through the renders' status index: only running renders have chunks worth a look.
        lost = session.execute(
            select(RenderChunk.render_id, RenderChunk.index)
            .join(Render, Render.id == RenderChunk.render_id)
            .where(
                Render.status == RenderStatus.RENDERING,
                RenderChunk.status == RenderStatus.RENDERING,
                RenderChunk.lease_expires_at < now,
            )
        ).all()
    again: list[tuple[str, str, int]] = []
    for render_id, index in lost:
        with services.db.transaction() as session:
            render = lifecycle.locked(session, render_id, status=RenderStatus.RENDERING)
            chunk = _chunk(session, render_id, index)
            if render is None or chunk is None:
                continue
            if chunk.status != RenderStatus.RENDERING or (chunk.lease_expires_at or 0) >= now:
                continue
            if chunk.attempts >= services.limits.max_render_attempts:
                log.error("chunk %s/%d lost its worker again; failing the render", render_id, index)
                _set(chunk, now, status=RenderStatus.FAILED)
                lost_worker = lifecycle.Outcome.failed(failures.worker_lost())
                lifecycle.finish(session, services, render, lost_worker)
                continue
            log.warning(
                "chunk %s/%d lost its worker %s; handing it out again",
                render_id,
                index,
                chunk.lease_owner,
            )
            _set(chunk, now, status=RenderStatus.PENDING)
            if render.lease_owner is not None:
                again.append((render_id, render.lease_owner, index))
    return again


@dataclass
class LostMessages:
    """What :func:`resend_lost_messages` found to send again."""

    chunks: list[tuple[str, str, int]]  # (render_id, job owner, index)
    joins: list[tuple[str, str]]  # (render_id, job owner)


def resend_lost_messages(services: Services) -> LostMessages:
    """The chunk and join messages of running renders that look lost: a chunk ``pending`` and
    untouched, or all chunks done with the render untouched (a running join renews it), for
    ``limits.pending_redispatch_ms``. Each found is stamped, so it is sent again once per
    interval, not once per reconciler pass."""
    now = services.clock()
    quiet_since = now - services.limits.pending_redispatch_ms
    with services.db.session() as session:
        running = session.execute(
            select(Render.id)
            .where(Render.status == RenderStatus.RENDERING, Render.updated_at < quiet_since)
            .where(select(RenderChunk.index).where(RenderChunk.render_id == Render.id).exists())
        ).scalars()
        candidates = list(running)
    found = LostMessages([], [])
    for render_id in candidates:
        with services.db.transaction() as session:
            render = lifecycle.locked(session, render_id, status=RenderStatus.RENDERING)
            if render is None or render.lease_owner is None or render.updated_at >= quiet_since:
                continue
            chunks = _chunks(session, render_id, lock=True)
            if chunks and all(chunk.status == RenderStatus.COMPLETE for chunk in chunks):
                if max(chunk.updated_at for chunk in chunks) < quiet_since:
                    store.update(session, render_id, now=now)  # once per interval
                    found.joins.append((render_id, render.lease_owner))
                continue
            for chunk in chunks:
                if chunk.status == RenderStatus.PENDING and chunk.updated_at < quiet_since:
                    _set(chunk, now)
                    found.chunks.append((render_id, render.lease_owner, chunk.index))
    return found


def segments(services: Services, render_id: str) -> list[str] | None:
    """The segment keys of a render in frame order; None unless every chunk is complete."""
    with services.db.session() as session:
        rows = [(c.status, c.segment_key) for c in _chunks(session, render_id)]
    keys = [key for status, key in rows if status == RenderStatus.COMPLETE and key]
    return keys if rows and len(keys) == len(rows) else None


def download_segments(services: Services, keys: list[str], workdir: Path) -> list[Path]:
    return [
        services.storage.get_file(key, workdir / f"{index:04d}{Path(key).suffix}")
        for index, key in enumerate(keys)
    ]


def chunk_workers(services: Services, render_id: str) -> dict[int, str | None]:
    """Who encoded (or holds) each chunk, by index: for operators and tests."""
    with services.db.session() as session:
        return {chunk.index: chunk.lease_owner for chunk in _chunks(session, render_id)}


class ChunkReporter(LeaseReporter):
    """The frames of one claimed chunk, written with both its and the render's lease renewal.

    The chunk's lease is short, so the heartbeat is what keeps it past the encoder's flush and
    the upload; a write that finds the render cancelled, timed out or handed on stops the
    encoder at the next frame.
    """

    _log = log

    def __init__(self, services: Services, claim: ChunkClaim) -> None:
        name = f"{claim.render.id}/{claim.index}"
        super().__init__(
            services,
            claim.render.id,
            started_at=claim.render.started_at,
            written=0,
            label=f"chunk {name}",
            thread_name=f"chunk-{name}",
        )
        self._claim = claim

    def _value(self, done: int, total: int) -> int:
        return done

    def _write(self) -> None:
        record_progress(self._services, self._claim, self._latest)
        self._written = self._latest


def _chunks(session: Session, render_id: str, *, lock: bool = False) -> list[RenderChunk]:
    statement = (
        select(RenderChunk).where(RenderChunk.render_id == render_id).order_by(RenderChunk.index)
    )
    if lock:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return list(session.execute(statement).scalars())


def _chunk(session: Session, render_id: str, index: int) -> RenderChunk | None:
    return session.get(
        RenderChunk, (render_id, index), with_for_update=True, populate_existing=True
    )


def _owned(session: Session, claim: ChunkClaim) -> tuple[Render, RenderChunk]:
    render = lifecycle.owned(session, claim.render.id, claim.owner)
    chunk = _chunk(session, claim.render.id, claim.index)
    if chunk is None or chunk.status != RenderStatus.RENDERING or chunk.lease_owner != claim.worker:
        raise LostClaim(claim.render.id, "handed to another worker")
    return render, chunk


def _sum_progress(session: Session, services: Services, render: Render, now: int) -> int:
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
    return store.update(session, render.id, now=now, **changes).progress


def _set(chunk: RenderChunk, now: int, **values: object) -> None:
    """Change a locked chunk, stamped with the services' clock; a chunk that leaves
    ``rendering`` drops its lease (its ``lease_owner`` stays, naming who encoded it)."""
    if "status" in values:
        values["status"] = str(RenderStatus(str(values["status"])))  # the plain value, as stored
        if values["status"] != RenderStatus.RENDERING:
            values.setdefault("lease_expires_at", None)
    for name, value in values.items():
        setattr(chunk, name, value)
    chunk.updated_at = now
    flag_modified(chunk, "updated_at")  # written even when unchanged: no wall-clock onupdate
