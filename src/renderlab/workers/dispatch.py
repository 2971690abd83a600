"""``CeleryDispatcher``: how ``serve`` (and tests, and the bench) hand renders to Celery.

``dispatch`` runs right after the render's ``pending`` row is committed. If the broker is
unreachable the render stays ``pending`` and the reconciler sends it again later, so a broker
outage delays renders instead of failing the request that created them. ``start``/``stop``
run the reconciler (:mod:`renderlab.workers.reconcile`) for the owner's lifetime: ``serve``'s
app lifespan calls them, as it does for the embedded pool.

While started, messages go out from one sender thread through a bounded outbox, so no request
waits on the broker: with Redis away, a send blocks for up to ``broker_connect_timeout_s``,
and two such sends on the API's two database threads held every database route, the health
check included, for as long (``bench/faults.py --fault redis-restart``). Unstarted (scripts,
tests), ``dispatch`` sends at once.
"""

from __future__ import annotations

import logging
import queue
import threading

from celery import Celery
from kombu.exceptions import OperationalError as BrokerError

from renderlab.services import Services
from renderlab.workers.celery_app import START, send
from renderlab.workers.reconcile import Reconciler, reconcile_once

log = logging.getLogger(__name__)


class CeleryDispatcher:
    """Sends the start task of a committed render; runs a reconciler while started."""

    def __init__(self, app: Celery, services: Services) -> None:
        self.app = app
        self.services = services
        self._reconciler = Reconciler(app, services)
        self._outbox: queue.Queue[str | None] = queue.Queue(services.limits.dispatch_queue_max)
        self._sender: threading.Thread | None = None

    def dispatch(self, render_id: str) -> None:
        if self._sender is None:
            self._send(render_id)
            return
        try:
            self._outbox.put_nowait(render_id)
        except queue.Full:
            log.warning("broker outbox full; render %s waits for the reconciler", render_id)

    def reconcile_once(self) -> None:
        reconcile_once(self.app, self.services)

    def start(self) -> None:
        self._reconciler.start()
        self._sender = threading.Thread(target=self._drain, name="celery-dispatch", daemon=True)
        self._sender.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._reconciler.stop(timeout)
        sender, self._sender = self._sender, None
        if sender is not None:
            # What is still queued is sent again by a reconciler (any worker's) once its
            # render has waited `pending_redispatch_ms`.
            while True:
                try:
                    self._outbox.get_nowait()
                except queue.Empty:
                    break
            self._outbox.put(None)
            sender.join(timeout)

    def _drain(self) -> None:
        while (render_id := self._outbox.get()) is not None:
            self._send(render_id)

    def _send(self, render_id: str) -> None:
        try:
            send(self.app, START, render_id)
        except BrokerError:
            log.warning("broker unreachable; render %s waits for the reconciler", render_id)
