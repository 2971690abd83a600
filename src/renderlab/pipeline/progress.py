"""Progress and heartbeat of one claimed render, written at the configured cadence.

The renderer calls back every few frames (far more often than anyone needs). The reporter
keeps the highest value seen and writes it, with a lease renewal, at most every
``limits.progress_min_interval_ms``; a heartbeat thread writes at least every
``limits.poll_interval_ms`` (or a third of the lease, if shorter) so the lease stays alive and
a throttled last value is not left unwritten while the encoder or an upload is busy.

Each write is also the worker's look at the outside world: if the render was cancelled, timed
out or handed to another worker, the write raises :class:`LostClaim` and the next frame
callback re-raises it, which stops the renderer (it removes its partial file). The render's
own deadline (``started_at + limits.render_timeout_ms``) is checked on every callback.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import SQLAlchemyError

from renderlab.models import Render
from renderlab.pipeline.claim import renew_lease
from renderlab.pipeline.failures import LostClaim, RenderTimedOut
from renderlab.services import Services

log = logging.getLogger(__name__)

RENDERING_MAX_PERCENT = 99
"""Progress while frames are encoded or the video is stored; 100 is written with ``complete``."""


def percent_of(done: int, total: int) -> int:
    if total <= 0:
        return 0
    return max(0, min(RENDERING_MAX_PERCENT, done * 100 // total))


class ProgressReporter:
    """``frames(done, total)`` is the renderer's ``on_progress``; use it inside ``running()``.

    Times here are monotonic seconds: throttling and the deadline must not jump with the wall
    clock (or a test's fake clock).
    """

    def __init__(self, services: Services, render: Render, owner: str) -> None:
        limits = services.limits
        self._services = services
        self._render_id = render.id
        self._owner = owner
        self._min_interval = limits.progress_min_interval_ms / 1000
        self._heartbeat_interval = min(limits.poll_interval_ms, limits.lease_ms // 3) / 1000
        started_at = render.started_at if render.started_at is not None else services.clock()
        remaining_ms = max(0, started_at + limits.render_timeout_ms - services.clock())
        self._deadline = time.monotonic() + remaining_ms / 1000
        self._written = render.progress
        self._latest = render.progress
        self._last_write = time.monotonic()  # the claim itself was a write
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._lost: LostClaim | None = None
        self.writes: list[int] = []  # progress values written, in order (for logs and tests)

    @property
    def deadline(self) -> float:
        """When the render's time is up, on ``time.monotonic()``."""
        return self._deadline

    def check(self) -> None:
        """Raise if the render must stop: no longer ours, or out of time."""
        if self._lost is not None:
            raise self._lost
        if time.monotonic() >= self._deadline:
            raise RenderTimedOut(self._render_id)

    def frames(self, done: int, total: int) -> None:
        """Record ``done`` of ``total`` frames; write if due. Raises to stop the renderer."""
        self.check()
        percent = percent_of(done, total)
        with self._lock:
            self._latest = max(self._latest, percent)
            due = time.monotonic() - self._last_write >= self._min_interval
            if due and self._latest > self._written:
                self._write_locked()
        self.check()

    def flush(self) -> None:
        """Write the latest value if it has not been written (and renew the lease)."""
        with self._lock:
            self._write_locked()
        self.check()

    def _write_locked(self) -> None:
        if self._lost is not None:
            return
        progress = self._latest if self._latest > self._written else None
        try:
            render = renew_lease(self._services, self._render_id, self._owner, progress=progress)
        except LostClaim as exc:
            self._lost = exc
            return
        except SQLAlchemyError:
            # A database hiccup must not fail a render that is otherwise fine: the next write
            # (or heartbeat) tries again, and if the lease runs out meanwhile the reconciler
            # hands the render on and our next write learns it is no longer ours.
            log.warning("progress write for render %s failed", self._render_id, exc_info=True)
            return
        finally:
            self._last_write = time.monotonic()
        if render.progress > self._written:
            self._written = render.progress
            self.writes.append(render.progress)

    def _heartbeat(self) -> None:
        while True:
            with self._lock:
                wait = self._last_write + self._heartbeat_interval - time.monotonic()
            if wait > 0:
                if self._stop.wait(wait):
                    return
                continue
            with self._lock:
                self._write_locked()
                lost = self._lost is not None
            if lost:
                return

    @contextmanager
    def running(self) -> Iterator[ProgressReporter]:
        """Keep the heartbeat going for the duration of the block."""
        thread = threading.Thread(
            target=self._heartbeat, name=f"heartbeat-{self._render_id}", daemon=True
        )
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
