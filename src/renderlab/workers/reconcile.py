"""The cluster's reconciler: a thread in every worker and every API process, no Celery beat.

Why not beat: beat is one more process that must run exactly once, and a render must not get
stuck because it is down. Every pass is a compare-and-set on locked rows, so any number of
reconcilers can run at once and each stuck render or chunk is acted on once. A pass costs a
few indexed queries, every half of the shorter of ``limits.lease_ms`` and
``limits.pending_redispatch_ms``.

One pass:

* :func:`renderlab.pipeline.recover.reconcile`, as in the embedded mode: renders past their
  timeout fail; renders whose job lease lapsed go back to pending (or fail after
  ``limits.max_render_attempts``); renders left ``pending`` for
  ``limits.pending_redispatch_ms`` (a lost message) are sent again;
* :func:`renderlab.pipeline.chunked.release_lost_chunks`: chunks whose worker stopped
  renewing (killed, machine lost) are sent again, or fail their render after
  ``limits.max_render_attempts`` claims;
* :func:`renderlab.pipeline.chunked.resend_lost_messages`: chunk and join messages a broker
  forgot (a restart without persistence) are sent again.

Beside it, the same owner runs a :class:`~renderlab.pipeline.webhook_sender.WebhookSender`:
webhooks are delivered from every worker and API process, each attempt by one of them (the
outbox leases its events).
"""

from __future__ import annotations

import logging
import threading

from celery import Celery

from renderlab.pipeline import chunked
from renderlab.pipeline.recover import reconcile
from renderlab.pipeline.webhook_sender import WebhookSender
from renderlab.services import Services
from renderlab.workers.celery_app import CHUNK, JOIN, START, send

log = logging.getLogger(__name__)


def reconcile_once(app: Celery, services: Services) -> None:
    """One pass (see the module docstring)."""
    reconcile(services, lambda render_id: send(app, START, render_id))
    for render_id, owner, index in chunked.release_lost_chunks(services):
        send(app, CHUNK, render_id, owner, index)
    lost = chunked.resend_lost_messages(services)
    for render_id, owner, index in lost.chunks:
        send(app, CHUNK, render_id, owner, index)
    for render_id, owner in lost.joins:
        send(app, JOIN, render_id, owner)


class Reconciler:
    """:func:`reconcile_once` on a daemon thread until :meth:`stop`."""

    def __init__(self, app: Celery, services: Services) -> None:
        self.app = app
        self.services = services
        limits = services.limits
        self.interval_s = min(limits.lease_ms, limits.pending_redispatch_ms) / 2000
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.webhooks = WebhookSender(services)

    def start(self) -> None:
        if self._thread is not None:
            return
        if not self.services.settings.webhook_secret:
            log.warning(
                "RENDERLAB_WEBHOOK_SECRET is unset: webhooks from this process are signed with "
                "the secret in its own data dir; set one secret for every process of a cluster"
            )
        self.webhooks.start()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="reconciler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.webhooks.stop(timeout)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                reconcile_once(self.app, self.services)
            except Exception:  # the broker or the database is briefly away: next pass
                log.warning("reconciler pass failed", exc_info=True)
