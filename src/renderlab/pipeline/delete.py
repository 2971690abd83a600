"""Deleting renders and generations: the ``delete`` moment, and the one rule for stored files.

A delete is three steps, in this order:

1. a render still ``pending`` or ``rendering`` is cancelled first (:func:`.lifecycle.cancel`:
   its end hooks run, its quota slot comes back, the embedded pool kills its process);
2. ONE transaction deletes the rows (the database cascades its chunks and Idempotency-Key
   rows) and works out which stored objects no other render still references;
3. after the commit, those objects are removed from storage (local or S3), with the render's
   chunk segments. A failed removal is logged and leaves an orphan; it never undoes the delete.

Shared outputs are counted (:func:`unreferenced`): with the output cache two renders may point
at one stored object, and an object goes only when no other render row that is neither deleted
nor ``output_expired`` references it. Retention (:mod:`.retention`) uses the same rule.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from renderlab import store
from renderlab.caps import CapError
from renderlab.models import TERMINAL_STATUSES, Generation, Render
from renderlab.pipeline import chunked, failures, lifecycle
from renderlab.render.formats import get_format
from renderlab.services import Canceller, Services
from renderlab.storage import StorageError, keys

log = logging.getLogger(__name__)


@dataclass
class Doomed:
    """What to remove from storage once the rows are gone."""

    keys: set[str] = field(default_factory=set)
    segments_of: list[str] = field(default_factory=list)
    still_running: list[str] = field(default_factory=list)


def stored_keys(render: Render) -> set[str]:
    """Every key the render's files are or may be stored under: the keys on its row, and the
    keys its worker writes before it completes (a render killed between storing its video and
    completing has no ``output_key`` yet, but its video is there)."""
    candidates = {render.output_key, render.poster_key, keys.poster_key(render.id)}
    candidates.add(f"renders/{render.user_id}/{render.id}.mp4")  # the first key scheme
    with contextlib.suppress(CapError):  # a codec this version does not know: its row's keys
        candidates.add(keys.output_key(render.id, get_format(render.codec).extension.lstrip(".")))
    return {key for key in candidates if key}


def unreferenced(
    session: Session, candidates: Iterable[str], *, besides: Iterable[str] = ()
) -> set[str]:
    """Of ``candidates``, the keys no render row references any more, leaving out the rows
    ``besides`` (the ones going away) and rows whose output already expired: THE rule delete
    and expiry both remove objects by."""
    wanted = set(candidates)
    if not wanted:
        return set()
    statement = select(Render.output_key, Render.poster_key).where(
        or_(Render.output_key.in_(wanted), Render.poster_key.in_(wanted)),
        Render.output_expired.is_(False),
    )
    excluded = list(besides)
    if excluded:
        statement = statement.where(Render.id.not_in(excluded))
    referenced = {key for row in session.execute(statement) for key in row}
    return wanted - referenced


def remove_objects(services: Services, doomed: Doomed) -> int:
    """Remove ``doomed``'s objects and segment folders; returns how many removals failed."""
    failed = 0
    for key in sorted(doomed.keys):
        failed += _removed_or_logged(services.storage.delete, key)
    for render_id in doomed.segments_of:
        failed += _removed_or_logged(
            services.storage.delete_prefix, chunked.segment_prefix(render_id)
        )
    return failed


def _removed_or_logged(remove: Callable[[str], None], key: str) -> int:
    try:
        remove(key)
    except StorageError:
        log.warning("could not remove %s from storage; it is left orphaned", key, exc_info=True)
        return 1
    return 0


def delete_render(services: Services, user_id: str, render_id: str) -> None:
    """The owner deletes a render (another user's, or none: :class:`~renderlab.store.NotFound`)."""
    with services.db.read_one() as connection:
        render = store.get(connection, render_id, user_id=user_id)
    _cancel_if_running(services, user_id, [render])
    with services.db.transaction() as session:
        locked = lifecycle.locked(session, render_id)
        if locked is None or locked.user_id != user_id:
            raise store.NotFound("render not found")
        doomed = _delete_rows(session, services, [locked])
    _after_commit(services, doomed)
    log.info("render %s deleted by its owner", render_id)


def delete_generation(services: Services, user_id: str, generation_id: str) -> None:
    """The owner deletes a generation with every render of it (else NotFound)."""
    with services.db.session() as session:
        store.get_generation(session, user_id, generation_id)
        renders = _renders_of(session, generation_id)
        session.expunge_all()
    _cancel_if_running(services, user_id, renders)
    with services.db.transaction() as session:
        generation = session.execute(
            select(Generation)
            .where(Generation.id == generation_id, Generation.user_id == user_id)
            .with_for_update()
        ).scalar_one_or_none()
        if generation is None:
            raise store.NotFound("generation not found")
        doomed = _delete_rows(session, services, _renders_of(session, generation_id, lock=True))
        session.execute(delete(Generation).where(Generation.id == generation_id))
    _after_commit(services, doomed)
    log.info(
        "generation %s deleted by its owner (%d renders)", generation_id, len(doomed.segments_of)
    )


def _renders_of(session: Session, generation_id: str, *, lock: bool = False) -> list[Render]:
    statement = select(Render).where(Render.generation_id == generation_id).order_by(Render.id)
    if lock:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return list(session.execute(statement).scalars())


def _cancel_if_running(
    services: Services, user_id: str, renders: Iterable[Render | store.RenderSnapshot]
) -> None:
    for render in renders:
        if render.status in TERMINAL_STATUSES:
            continue
        with contextlib.suppress(lifecycle.RenderFinished):  # it ended meanwhile
            lifecycle.cancel(services, user_id, render.id)


def _delete_rows(session: Session, services: Services, renders: list[Render]) -> Doomed:
    """In the caller's transaction: end what still runs (a start that raced the cancel), delete
    the rows, and say which of their objects nobody else references."""
    doomed = Doomed()
    candidates: set[str] = set()
    for render in renders:
        if render.status not in TERMINAL_STATUSES:
            lifecycle.finish(
                session, services, render, lifecycle.Outcome.failed(failures.cancelled())
            )
            doomed.still_running.append(render.id)
        candidates |= stored_keys(render)
        doomed.segments_of.append(render.id)
    ids = [render.id for render in renders]
    if ids:
        session.execute(delete(Render).where(Render.id.in_(ids)))
    doomed.keys = unreferenced(session, candidates, besides=ids)
    return doomed


def _after_commit(services: Services, doomed: Doomed) -> None:
    if isinstance(services.dispatcher, Canceller):
        for render_id in doomed.still_running:
            services.dispatcher.cancel(render_id)
    remove_objects(services, doomed)
