"""The webhook delivery loop of a long-lived process, on a thread of its own.

``serve`` runs one beside its embedded workers (:class:`~renderlab.pipeline.embedded.
EmbeddedWorkers`) and every cluster process beside its reconciler
(:class:`~renderlab.workers.reconcile.Reconciler`). Each runs
:func:`~renderlab.webhooks.loop.run_delivery_loop` on its own event loop, so a slow receiver
never holds the API's loop, and any number of them may run on one database: the outbox's
leases keep two from making the same attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid

from renderlab.pipeline.webhook_outbox import refresher
from renderlab.services import Services
from renderlab.webhooks.loop import deliverer_name, delivery_config, run_delivery_loop
from renderlab.webhooks.outbox import DeliveryConfig

log = logging.getLogger(__name__)


SECRET_WAIT_S = 2.0
"""How long to wait for a data-dir secret another process is writing at this moment."""


def _config(services: Services) -> DeliveryConfig:
    """The delivery settings. The data dir's secret is created with ``O_EXCL`` and written
    just after, so a process starting at the same moment as another may read it empty: read
    again briefly. A malformed ``RENDERLAB_WEBHOOK_SECRET`` is a ``ValueError`` at once."""
    deadline = time.monotonic() + SECRET_WAIT_S
    while True:
        try:
            return delivery_config(services.settings, services.limits)
        except ValueError:
            if services.settings.webhook_secret or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class WebhookSender:
    """Delivers due webhooks every ``interval_s`` (at once again while a pass finds work)."""

    def __init__(self, services: Services, *, interval_s: float = 1.0) -> None:
        self.services = services
        self.interval_s = interval_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread; ``ValueError`` for a malformed ``RENDERLAB_WEBHOOK_SECRET``."""
        if self._thread is not None:
            return
        services = self.services
        config = _config(services)
        loop = asyncio.new_event_loop()
        stop = asyncio.Event()
        work = run_delivery_loop(
            services.db.transaction,
            config,
            services.clock,
            stop,
            owner=f"{deliverer_name()}:{uuid.uuid4().hex[:8]}",  # two senders, two owners
            interval_s=self.interval_s,
            refresh=refresher(services),
            peek=services.db.session,  # an idle pass reads; it takes no writer
        )
        self._loop, self._stop = loop, stop
        self._thread = threading.Thread(
            target=self._run, args=(loop, work), name="renderlab-webhooks", daemon=True
        )
        self._thread.start()

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop, work: object) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(work)  # type: ignore[arg-type]
        except Exception:
            log.exception("the webhook delivery loop stopped")
        finally:
            loop.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the pass under way (an attempt left unrecorded is made again once its
        lease lapses: at least once)."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None or loop is None or stop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)
        self._thread = self._loop = self._stop = None
