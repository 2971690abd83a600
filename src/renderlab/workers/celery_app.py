"""The Celery application, configured for long CPU-bound tasks.

* ``task_acks_late`` + ``worker_prefetch_multiplier = 1``: a worker takes one message at a time
  and acknowledges it when done, so a message is never lost with a busy worker.
* ``task_reject_on_worker_lost = False``: a task whose process died is *not* requeued by
  Celery (a chunk that kills its process would loop forever); the reconciler hands the chunk
  out again from the database, at most ``limits.max_render_attempts`` times.
* Soft and hard time limits from the render timeout; the broker's visibility timeout above the
  longest task, so Redis never redelivers a task that is still running.
"""

from __future__ import annotations

from celery import Celery

from renderlab.config import Settings
from renderlab.limits import Limits

QUEUE = "renderlab"


def make_celery(settings: Settings, limits: Limits) -> Celery:
    if not settings.broker_url:
        raise ValueError("RENDERLAB_BROKER_URL is not set: cluster mode needs a broker")
    timeout_s = limits.render_timeout_ms / 1000
    app = Celery("renderlab", broker=settings.broker_url, include=["renderlab.workers.tasks"])
    app.conf.update(
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=False,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=timeout_s,
        task_time_limit=timeout_s + 15,
        broker_transport_options={"visibility_timeout": int(timeout_s * 2 + 60)},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    app.conf.renderlab_settings = settings
    app.conf.renderlab_limits = limits
    return app
