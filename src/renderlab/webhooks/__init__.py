"""Completion webhooks (Standard Webhooks): signing, the SSRF check, one delivery attempt, the
retry schedule and the outbox that keeps pending deliveries in the database.

Core: nothing here knows of FastAPI, Celery or the CLI. The pipeline enqueues an event in the
transaction that ends a render (:func:`outbox.enqueue`); a delivery loop
(:func:`loop.run_delivery_loop`, or a Celery task calling :func:`outbox.deliver_due`) sends it.
"""

from renderlab.webhooks.delivery import Attempt, deliver, deliver_async, next_attempt_at
from renderlab.webhooks.events import EVENT_TYPES, Event, make_event, new_event_id
from renderlab.webhooks.signing import (
    WebhookVerificationError,
    new_secret,
    sign_headers,
    verify,
    webhook_secret,
)
from renderlab.webhooks.ssrf import InvalidWebhookURL, Target, check_webhook_url, resolve_target

__all__ = [
    "EVENT_TYPES",
    "Attempt",
    "Event",
    "InvalidWebhookURL",
    "Target",
    "WebhookVerificationError",
    "check_webhook_url",
    "deliver",
    "deliver_async",
    "make_event",
    "new_event_id",
    "new_secret",
    "next_attempt_at",
    "resolve_target",
    "sign_headers",
    "verify",
    "webhook_secret",
]
