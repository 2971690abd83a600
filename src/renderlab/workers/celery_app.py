"""The Celery application, configured for long CPU-bound tasks.

* ``task_acks_late`` + ``worker_prefetch_multiplier = 1``: a worker takes one message at a time
  and acknowledges it when done, so a message is never lost with a busy or dying worker.
* ``task_reject_on_worker_lost = False``: a task whose process died is *not* requeued by
  Celery (a chunk that kills its process would loop forever); the reconciler hands the chunk
  out again from the database, at most ``limits.max_render_attempts`` times, then fails it.
* Soft and hard time limits from the render timeout; the Redis visibility timeout above the
  longest task (hard limit and retry countdown included), so Redis never redelivers a task
  that is still running.
* One queue with two priorities: the work of renders already started (chunks, joins) is taken
  before a new render is started. A render's timeout counts from its start, so without this a
  burst of renders would all be started at once and the last ones would time out waiting for
  their chunks behind everyone else's. New renders wait as ``pending``, where waiting costs
  nothing. Redis serves priority 0 first, RabbitMQ the highest number: :func:`priorities`
  hides the difference.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from celery import Celery
from kombu import Exchange, Queue

from renderlab.config import Settings
from renderlab.limits import Limits

QUEUE = "renderlab"
MAX_PRIORITY = 9
"""Priorities run 0..9 on both brokers (Redis's default steps are 0, 3, 6, 9)."""

START, CHUNK, JOIN = "renderlab.start_render", "renderlab.render_chunk", "renderlab.join_render"


def priorities(broker_url: str) -> dict[str, int]:
    """Message priority per task name: the work of started renders first, new renders last."""
    redis = urlsplit(broker_url).scheme.split("+")[0] in ("redis", "rediss", "sentinel")
    first, last = (0, MAX_PRIORITY) if redis else (MAX_PRIORITY, 0)
    return {START: last, CHUNK: first, JOIN: first}


def make_celery(settings: Settings, limits: Limits, *, queue: str = QUEUE) -> Celery:
    """The app for ``settings.broker_url``; ``queue`` names the broker queue (one deployment
    per name, so tests and staging can share a broker with production)."""
    if not settings.broker_url:
        raise ValueError("RENDERLAB_BROKER_URL is not set: cluster mode needs a broker")
    timeout_s = limits.render_timeout_ms / 1000
    hard_s = timeout_s + limits.celery_hard_limit_grace_s
    retry_s = limits.celery_retry_delay_s * (limits.celery_max_retries + 1)
    app = Celery("renderlab", broker=settings.broker_url, include=["renderlab.workers.tasks"])
    app.conf.update(
        task_queues=[
            Queue(
                queue,
                Exchange(queue, type="direct"),
                routing_key=queue,
                queue_arguments={"x-max-priority": MAX_PRIORITY + 1},
            )
        ],
        task_default_queue=queue,
        task_default_exchange=queue,
        task_default_routing_key=queue,
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=False,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=timeout_s,
        task_time_limit=hard_s,
        broker_transport_options=_transport_options(hard_s + retry_s, limits),
        broker_connection_timeout=limits.broker_connect_timeout_s,
        broker_connection_retry_on_startup=True,
        # A lost broker connection does not stop running chunks: their message comes back,
        # finds the chunk leased to a live worker in the database and does nothing.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    app.conf.renderlab_settings = settings
    app.conf.renderlab_limits = limits
    app.conf.renderlab_priorities = priorities(settings.broker_url)
    return app


def _transport_options(longest_task_s: float, limits: Limits) -> dict[str, Any]:
    # Redis only (other transports ignore these): redeliver an unacknowledged message only
    # once no task could still be running it (twice the longest, retries included); fail fast
    # when Redis is unreachable.
    return {
        "visibility_timeout": int(2 * longest_task_s) + 1,
        "socket_connect_timeout": limits.broker_connect_timeout_s,
    }


def send(app: Celery, task: str, *args: object) -> None:
    """Publish ``task(*args)`` with its priority on the app's queue."""
    app.send_task(task, args=list(args), priority=app.conf.renderlab_priorities[task])
