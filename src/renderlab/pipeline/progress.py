"""Progress and heartbeat of one claimed render (or chunk, in :mod:`.chunked`), written at the
configured cadence.

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
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar, Self

from sqlalchemy.exc import SQLAlchemyError

from renderlab.models import Render
from renderlab.pipeline import lifecycle
from renderlab.pipeline.failures import LostClaim, RenderTimedOut
from renderlab.services import Services
from renderlab.store import RenderSnapshot

log = logging.getLogger(__name__)

RENDERING_MAX_PERCENT = 99
"""Progress while frames are encoded or the video is stored; 100 is written with ``complete``."""


def percent_of(done: int, total: int) -> int:
    if total <= 0:
        return 0
    return max(0, min(RENDERING_MAX_PERCENT, done * 100 // total))


class LeaseReporter(ABC):
    """The throttle, heartbeat and lost-claim handling every claimed piece of work needs, so
    that a reporter only says what it counts (:meth:`_value`) and how it writes it
    (:meth:`_write`): a whole render here, a chunk in :mod:`.chunked`.

    ``frames(done, total)`` is the renderer's ``on_progress``; use it inside :meth:`running`.
    Times here are monotonic seconds: throttling and the deadline must not jump with the wall
    clock (or a test's fake clock). Every write holds the lock, so the renderer's thread and
    the heartbeat never write at once nor undo each other's value.
    """

    _log: ClassVar[logging.Logger] = log
    """Where a failed write is logged: a subclass names its own module's logger, so its records
    keep the logger name operators filter on."""

    def __init__(
        self,
        services: Services,
        render_id: str,
        *,
        started_at: int | None,
        written: int,
        label: str,
        thread_name: str,
    ) -> None:
        limits = services.limits
        self._services = services
        self._render_id = render_id
        self._label = label
        self._thread_name = thread_name
        self._min_interval = limits.progress_min_interval_ms / 1000
        self._heartbeat_interval = min(limits.poll_interval_ms, limits.lease_ms // 3) / 1000
        started = started_at if started_at is not None else services.clock()
        remaining_ms = max(0, started + limits.render_timeout_ms - services.clock())
        self._deadline = time.monotonic() + remaining_ms / 1000
        self._written = written
        self._latest = written
        self._last_write = time.monotonic()  # the claim itself was a write
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._lost: LostClaim | None = None

    @abstractmethod
    def _value(self, done: int, total: int) -> int:
        """What ``done`` of ``total`` frames counts as in what :meth:`_write` stores."""

    @abstractmethod
    def _write(self) -> None:
        """Store ``self._latest`` (or only renew the lease) and move ``self._written`` to what
        was stored; called under the lock. Raises :class:`LostClaim` when the work is no longer
        ours, or a database error, which the next write retries."""

    @property
    def deadline(self) -> float:
        """When the render's time is up, on ``time.monotonic()``."""
        return self._deadline

    def check(self) -> None:
        """Raise if the work must stop: no longer ours, or the render is out of time."""
        if self._lost is not None:
            raise self._lost
        if time.monotonic() >= self._deadline:
            raise RenderTimedOut(self._render_id)

    def frames(self, done: int, total: int) -> None:
        """Record ``done`` of ``total`` frames; write if due. Raises to stop the renderer."""
        self.check()
        value = self._value(done, total)
        with self._lock:
            self._latest = max(self._latest, value)
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
        try:
            self._write()
        except LostClaim as exc:
            self._lost = exc
        except SQLAlchemyError:
            # A database hiccup must not fail work that is otherwise fine: the next write (or
            # heartbeat) tries again, and if the lease runs out meanwhile the reconciler hands
            # the work on and our next write learns it is no longer ours.
            self._log.warning("progress write for %s failed", self._label, exc_info=True)
        finally:
            self._last_write = time.monotonic()

    def _heartbeat(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                # Deciding and writing under one hold: a frame write that lands in between
                # would otherwise be followed by a second, needless heartbeat write.
                wait = self._last_write + self._heartbeat_interval - time.monotonic()
                if wait <= 0:
                    self._write_locked()
                    if self._lost is not None:
                        return
                    continue
            self._stop.wait(wait)

    @contextmanager
    def running(self) -> Iterator[Self]:
        """Keep the heartbeat going for the duration of the block."""
        thread = threading.Thread(target=self._heartbeat, name=self._thread_name, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()


class ProgressReporter(LeaseReporter):
    """A whole render's percentage, written with the render's lease renewal."""

    def __init__(self, services: Services, render: Render | RenderSnapshot, owner: str) -> None:
        super().__init__(
            services,
            render.id,
            started_at=render.started_at,
            written=render.progress,
            label=f"render {render.id}",
            thread_name=f"heartbeat-{render.id}",
        )
        self._owner = owner
        self.writes: list[int] = []  # progress values written, in order (for logs and tests)

    def _value(self, done: int, total: int) -> int:
        return percent_of(done, total)

    def _write(self) -> None:
        progress = self._latest if self._latest > self._written else None
        render = lifecycle.progress(self._services, self._render_id, self._owner, percent=progress)
        if render.progress > self._written:
            self._written = render.progress
            self.writes.append(render.progress)
