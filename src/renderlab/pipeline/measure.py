"""What the operator sees of a render's life: its metrics, and the log context of its worker.

* ``renders_started`` (with the queue wait) is counted by :func:`.lifecycle.claim` after the
  first claim of a render commits;
* :func:`count_finished` is an :data:`.lifecycle.AT_END` hook. It runs inside the ending
  transaction, which may still roll back (a later hook fails, the database goes away): so it
  only registers a post-commit callback on the session, and ``renders_finished`` is counted
  once the status change is certain, and exactly once per terminal transition;
* :func:`render_context` binds ``render_id``, ``user_id`` and the ``request_id`` of the
  ``POST /v1/renders`` that started it (stored on the row) to every log line of the worker.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from renderlab import logs, metrics
from renderlab.models import Render
from renderlab.pipeline import lifecycle
from renderlab.services import Services


def _seconds(later: int | None, earlier: int | None) -> float | None:
    if later is None or earlier is None:
        return None
    return max(0.0, (later - earlier) / 1000)


def count_finished(
    session: Session, services: Services, render: Render, outcome: lifecycle.Outcome
) -> None:
    """The AT_END hook: count the end once the ending transaction has committed."""
    status, codec = str(outcome.status), render.codec
    duration_s = _seconds(render.completed_at, render.started_at)

    def committed(_session: Session) -> None:
        metrics.render_finished(status, codec, duration_s)

    event.listen(session, "after_commit", committed, once=True)


@contextlib.contextmanager
def render_context(render: Any) -> Iterator[None]:
    """Every line logged inside carries the render's ids (and its start request's id)."""
    with logs.bind(
        render_id=render.id,
        user_id=render.user_id,
        request_id=getattr(render, "request_id", None),
    ):
        yield


lifecycle.AT_END.append(count_finished)
