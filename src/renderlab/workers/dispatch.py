"""Handing renders to Celery, and the reconciler that keeps the database the source of truth.

The reconciler runs in every ``renderlab worker`` (and in ``serve`` when a broker is set): the
passes are compare-and-set on locked rows, so several running at once never act twice. It hands
out again renders left ``pending`` (a lost message), renders whose job lease lapsed, and chunks
whose worker stopped renewing; it fails renders past their timeout.
"""

from __future__ import annotations

import logging
import threading

from celery import Celery

from renderlab.pipeline import chunked
from renderlab.pipeline.recover import reconcile
from renderlab.services import Services
from renderlab.workers.tasks import CHUNK, START

log = logging.getLogger(__name__)


class CeleryDispatcher:
    """``dispatch`` sends the start task; ``start``/``stop`` run the reconciler thread."""

    def __init__(self, app: Celery, services: Services) -> None:
        self.app = app
        self.services = services
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def dispatch(self, render_id: str) -> None:
        self.app.send_task(START, args=[render_id])

    def reconcile_once(self) -> None:
        reconcile(self.services, self.dispatch)
        for render_id, owner, index in chunked.release_lost_chunks(self.services):
            self.app.send_task(CHUNK, args=[render_id, owner, index])

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="reconciler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        limits = self.services.limits
        interval = min(limits.lease_ms, limits.pending_redispatch_ms) / 2000
        while not self._stop.wait(interval):
            try:
                self.reconcile_once()
            except Exception:  # the broker or database is briefly away: try next pass
                log.warning("reconciler pass failed", exc_info=True)
