"""The output cache: a render identical to an earlier complete one completes from its output.

Identical means the same user, the same generation props (as validated, so a default left out
equals the default written out), size, codec and poster frame (the default, the last frame,
equals that frame asked for by number). :func:`cache_key` hashes exactly these.

Only complete renders carry their key (:func:`remember_output`, an ``AT_END`` hook, writes it
when a render completes), so the lookup on the ``by_cache_key`` index ``(user_id, cache_key)``
sees outputs and nothing else: a burst of identical requests in flight (a client's retries,
``bench/api.py``) leaves no trail of pending or failed rows for every later start to step over.

A hit is looked up and used inside the start transaction (:mod:`renderlab.pipeline.start`):
the new row is inserted ``rendering`` with the key and ended through ``lifecycle.finish`` in
the same transaction, so the ``AT_END`` hooks (webhooks, retention, metrics) run exactly as for
a rendered one, and nothing is dispatched. The quota slot is consumed as for any render.

The two renders then share one stored object; deletion and expiry count the rows that still
reference a key before removing it (that is theirs, not this module's).
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.orm import Session

from renderlab import store
from renderlab.compositions import TextAnimationProps
from renderlab.db import Executor
from renderlab.models import Render, RenderStatus
from renderlab.services import Services
from renderlab.store import RenderSnapshot

if TYPE_CHECKING:
    from renderlab.pipeline.lifecycle import Outcome


@dataclass(frozen=True, slots=True)
class CachedOutput:
    """The stored files of an earlier complete render that another render can reuse."""

    render_id: str
    output_key: str
    output_size: int
    poster_key: str | None


_FIND_HIT = (
    select(Render.id, Render.output_key, Render.output_size, Render.poster_key)
    .where(
        Render.user_id == bindparam("user_id"),
        Render.cache_key == bindparam("cache_key"),
        Render.status == str(RenderStatus.COMPLETE),
        Render.output_expired.is_(False),
        Render.output_key.is_not(None),
    )
    .order_by(Render.completed_at.desc())
    .limit(1)
    # Locked until the start commits: a delete or expiry of the hit counts the references to
    # its files after this start's new row is in (it waits for the lock), so it never removes
    # an object the new render points at; a hit deleted first is no longer found.
    .with_for_update()
)


@functools.lru_cache(maxsize=512)
def cache_key(
    props: TextAnimationProps, width: int, height: int, codec: str, poster_frame: int | None
) -> str:
    """sha256 of the canonical JSON of what decides a render's files. Cached (the props are
    frozen, so hashable): every start computes it, mostly for props started before."""
    frame = props.duration_in_frames - 1 if poster_frame is None else poster_frame
    body = {
        "props": props.model_dump(mode="json"),
        "width": width,
        "height": height,
        "codec": codec,
        "poster_frame": frame,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def find_output(connection: Executor, user_id: str, key: str) -> CachedOutput | None:
    """The newest complete render of ``user_id`` with ``key`` whose output still exists."""
    row = connection.execute(_FIND_HIT, {"user_id": user_id, "cache_key": key}).first()
    if row is None or row.output_size is None:
        return None
    return CachedOutput(row.id, row.output_key, row.output_size, row.poster_key)


def complete_from(
    connection: Connection, services: Services, render_id: str, hit: CachedOutput
) -> RenderSnapshot:
    """End the just-inserted ``rendering`` render ``render_id`` complete with ``hit``'s files,
    through :func:`lifecycle.finish`, inside ``connection``'s transaction (committed or rolled
    back with the rest of the start)."""
    # A session joined to the caller's transaction: it never commits it (the caller does).
    from renderlab.pipeline import lifecycle  # lifecycle imports this module for its hook

    with Session(bind=connection, join_transaction_mode="rollback_only") as session:
        render = store.update(session, render_id, now=services.clock(), started_at=services.clock())
        outcome = lifecycle.Outcome.completed(hit.output_key, hit.output_size, hit.poster_key)
        ended = lifecycle.finish(session, services, render, outcome)
        snapshot = RenderSnapshot.of(ended)
        session.flush()
    return snapshot


_SET_KEY = update(Render).where(Render.id == bindparam("b_id")).values(cache_key=bindparam("b_key"))


def remember_output(session: Session, services: Services, render: Render, outcome: Outcome) -> None:
    """``AT_END`` hook: a render that completed with an output becomes findable by its key."""
    if outcome.status != RenderStatus.COMPLETE or render.cache_key is not None:
        return
    connection = session.connection()
    props = store.generation_props(connection, render.user_id, render.generation_id)
    key = cache_key(props, render.width, render.height, render.codec, render.poster_frame)
    connection.execute(_SET_KEY, {"b_id": render.id, "b_key": key})
