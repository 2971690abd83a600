"""Prometheus metrics: one plain function per event, and the text a scrape reads.

The pipeline, the API and the webhook sender each record an event with one line
(``metrics.render_started("h264")``); nothing here can fail the work it counts (a broken
metrics directory logs once and counts nothing). Names follow Prometheus conventions and are
listed in ``docs/operations.md``.

Where the numbers come from, so they are right with ``serve --processes N`` and with Celery:

* Events (renders, refusals, stills, webhooks, HTTP) are counted where they happen, in
  prometheus-client's multiprocess mode when a directory is set up (:mod:`renderlab.metrics_dir`:
  ``serve`` and ``renderlab worker`` do it before they fork), else in this process's memory.
  Each ``serve`` host and each ``renderlab worker`` exposes the sum of its own processes; a
  cluster's total is ``sum()`` over the scraped instances.
* What is a state rather than an event (the render queue) is read from the database at scrape
  time (:func:`database_gauges`): every instance reports the same true figure, whichever
  process changed it. Alert on ``max()`` of it, not ``sum()``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ParamSpec

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from renderlab import metrics_dir
from renderlab.clock import now_ms
from renderlab.models import Render, RenderStatus

log = logging.getLogger(__name__)
P = ParamSpec("P")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RENDER_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)
WAIT_BUCKETS = (0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class _Metrics:
    registry: CollectorRegistry
    renders_started: Counter
    renders_finished: Counter
    render_duration: Histogram
    queue_wait: Histogram
    quota_refusals: Counter
    stills: Counter
    webhook_deliveries: Counter
    http_requests: Counter
    http_duration: Histogram


@functools.cache
def _metrics() -> _Metrics:
    """Built on first use, not at import: multiprocess mode is chosen when a value is made,
    and ``serve`` sets its directory up after importing this module."""
    disable_created_metrics()  # multiprocess mode has no ``_created`` series: match it
    registry = CollectorRegistry(auto_describe=True)  # ours only, so tests can run many apps
    return _Metrics(
        registry,
        Counter("renderlab_renders_started", "Renders that began rendering.", ["codec"],
                registry=registry),
        Counter("renderlab_renders_finished", "Renders that ended, by final status.",
                ["status", "codec"], registry=registry),
        Histogram("renderlab_render_duration_seconds", "Claim to end of a render.", ["codec"],
                  buckets=RENDER_BUCKETS, registry=registry),
        Histogram("renderlab_render_queue_wait_seconds", "Creation to claim of a render.",
                  buckets=WAIT_BUCKETS, registry=registry),
        Counter("renderlab_quota_refusals", "Render requests refused by a limit.", ["reason"],
                registry=registry),
        Counter("renderlab_stills", "Still previews, by outcome.", ["outcome"],
                registry=registry),
        Counter("renderlab_webhook_deliveries", "Webhook delivery attempts, by outcome.",
                ["outcome"], registry=registry),
        Counter("renderlab_http_requests", "HTTP requests, by route template.",
                ["route", "method", "status"], registry=registry),
        Histogram("renderlab_http_request_duration_seconds", "HTTP request to last byte.",
                  ["route", "method"], buckets=HTTP_BUCKETS, registry=registry),
    )  # fmt: skip


def _never_raises(fn: Callable[P, None]) -> Callable[P, None]:
    """Counting must not fail what it counts: a metrics error is logged, the work goes on."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            fn(*args, **kwargs)
        except Exception:
            log.exception("recording metric %s failed", fn.__name__)

    return wrapper


# -- events ------------------------------------------------------------------------------------


@_never_raises
def render_started(codec: str, queue_wait_s: float | None = None) -> None:
    """A worker claimed a render (``queue_wait_s``: since it was created, when known)."""
    m = _metrics()
    m.renders_started.labels(codec=codec).inc()
    if queue_wait_s is not None:
        m.queue_wait.observe(max(0.0, queue_wait_s))


@_never_raises
def render_finished(
    status: str, codec: str, duration_s: float | None = None, queue_wait_s: float | None = None
) -> None:
    """A render reached ``status`` (complete, failed, ...). ``queue_wait_s`` is for callers
    that did not give it to :func:`render_started`: give it in one place only."""
    m = _metrics()
    m.renders_finished.labels(status=status, codec=codec).inc()
    if duration_s is not None:
        m.render_duration.labels(codec=codec).observe(max(0.0, duration_s))
    if queue_wait_s is not None:
        m.queue_wait.observe(max(0.0, queue_wait_s))


@_never_raises
def quota_refused(reason: str) -> None:
    """``rate_limited`` or ``too_many_concurrent_renders``."""
    _metrics().quota_refusals.labels(reason=reason).inc()


@_never_raises
def still(outcome: str) -> None:
    """``ok``, ``rate_limited`` or ``failed``."""
    _metrics().stills.labels(outcome=outcome).inc()


@_never_raises
def webhook_delivery(outcome: str) -> None:
    """``delivered``, ``retrying`` (this attempt failed, another is planned) or ``failed``."""
    _metrics().webhook_deliveries.labels(outcome=outcome).inc()


@_never_raises
def http_request(route: str, method: str, status: int, duration_s: float) -> None:
    """``route`` is the template (``/v1/renders/{id}``), never the raw path: raw paths would
    make one series per render id."""
    method = method if method in HTTP_METHODS else "other"
    key = (route, method, status)
    series = _http_series.get(key)
    if series is None:  # ``labels()`` costs more than the rest of this: once per series
        m = _metrics()
        series = (
            m.http_requests.labels(route, method, str(status)),
            m.http_duration.labels(route, method),
        )
        _http_series[key] = series
    series[0].inc()
    series[1].observe(duration_s)


_http_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}
"""Children by (route template, method, status): a bounded set, as the labels are."""


# -- the scrape --------------------------------------------------------------------------------

ScrapeGauges = Callable[[Session], Iterable[Metric]]
EXTRA_GAUGES: list[ScrapeGauges] = []
"""More state read at scrape time (e.g. the webhook backlog, once its table exists):
append a function of a read session that yields metric families."""


def database_gauges(session: Session) -> list[Metric]:
    """The render queue as the database has it now, whichever process changed it."""
    counts = dict(
        session.execute(
            select(Render.status, func.count())
            .where(Render.status.in_((RenderStatus.PENDING, RenderStatus.RENDERING)))
            .group_by(Render.status)
        ).all()
    )
    oldest = session.execute(
        select(func.min(Render.created_at)).where(Render.status == RenderStatus.PENDING)
    ).scalar()
    age = 0.0 if oldest is None else max(0.0, (now_ms() - oldest) / 1000)
    families: list[Metric] = [
        _gauge("renderlab_queue_depth", "Renders pending (waiting for a worker).",
               counts.get(RenderStatus.PENDING, 0)),
        _gauge("renderlab_renders_in_progress", "Renders rendering now.",
               counts.get(RenderStatus.RENDERING, 0)),
        _gauge("renderlab_oldest_pending_render_age_seconds",
               "Age of the oldest pending render (0 when none).", age),
    ]  # fmt: skip
    for extra in EXTRA_GAUGES:
        families.extend(extra(session))
    return families


def exposition(state: Iterable[Metric] = ()) -> bytes:
    """The Prometheus text: every process's events (or this one's) and ``state``."""
    registry = CollectorRegistry(auto_describe=False)
    directory = metrics_dir.current_directory()
    if directory is not None and directory.is_dir():
        registry.register(metrics_dir.CompactingCollector(directory))
    else:
        registry.register(_Forward(_metrics().registry))
    registry.register(_Constant(list(state)))
    return generate_latest(registry)


class _Forward:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Metric]:
        return self.registry.collect()


class _Constant:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def _gauge(name: str, documentation: str, value: Any) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value))
