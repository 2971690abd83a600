"""``CeleryDispatcher``: how ``serve`` (and tests, and the bench) hand renders to Celery.

``dispatch`` runs right after the render's ``pending`` row is committed. If the broker is
unreachable the render stays ``pending`` and the reconciler sends it again later, so a broker
outage delays renders instead of failing the request that created them. ``start``/``stop``
run the reconciler (:mod:`renderlab.workers.reconcile`) for the owner's lifetime: ``serve``'s
app lifespan calls them, as it does for the embedded pool.
"""

from __future__ import annotations

import logging

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

    def dispatch(self, render_id: str) -> None:
        try:
            send(self.app, START, render_id)
        except BrokerError:
            log.warning("broker unreachable; render %s waits for the reconciler", render_id)

    def reconcile_once(self) -> None:
        reconcile_once(self.app, self.services)

    def start(self) -> None:
        self._reconciler.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._reconciler.stop(timeout)
