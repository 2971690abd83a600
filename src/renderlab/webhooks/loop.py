"""The delivery loop a long-lived process runs (``serve``'s lifespan, a worker, the
reconciler): a pass of :func:`~renderlab.webhooks.outbox.deliver_due` every ``interval_s``,
at once again while passes find work. Several processes may run it on one database: the
outbox's leases keep them from making the same attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable

from renderlab.config import Settings
from renderlab.limits import Limits
from renderlab.webhooks.outbox import DeliveryConfig, Refresh, Transaction, deliver_due
from renderlab.webhooks.signing import webhook_secret

log = logging.getLogger("renderlab.webhooks")


def delivery_config(settings: Settings, limits: Limits) -> DeliveryConfig:
    """The loop's settings from the process's; ``ValueError`` for a malformed secret."""
    return DeliveryConfig(
        secret=webhook_secret(settings),
        schedule=limits.webhook_retry_schedule_s,
        allow_private=settings.webhook_allow_private,
        timeout_s=limits.webhook_timeout_s,
        lease_ms=limits.webhook_lease_ms,
        batch=limits.webhook_batch,
    )


def deliverer_name() -> str:
    """A lease owner unique to this process: host and pid."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}"


async def run_delivery_loop(
    transaction: Transaction,
    config: DeliveryConfig,
    clock: Callable[[], int],
    stop: asyncio.Event,
    *,
    owner: str | None = None,
    interval_s: float = 1.0,
    refresh: Refresh | None = None,
    peek: Transaction | None = None,
) -> None:
    """Deliver due webhooks until ``stop`` is set. A failing pass (the database away) is
    logged and tried again next interval: the events wait in the outbox meanwhile. ``peek``
    (a read session) keeps idle passes from taking the writer."""
    name = owner or deliverer_name()
    while not stop.is_set():
        try:
            made = await deliver_due(transaction, name, config, clock, refresh, peek)
        except Exception:
            log.exception("webhook delivery pass failed; trying again in %.1f s", interval_s)
            made = 0
        if made == 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
