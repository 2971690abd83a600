"""Every render limit in one place, as the seed's ``RENDER_LIMITS`` kept them.

Nothing else in renderlab writes a limit down: the API, the pipeline, the workers and the
messages users read all take their numbers from a :class:`Limits` object built once from the
environment (``RENDERLAB_*`` variables) and passed down.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Annotated, Any

from pydantic import ConfigDict, Field, field_validator, model_validator

from renderlab.env import EnvSettings, NoDecode

# Standard Webhooks' suggested schedule: ~5 s, 5 min, 30 min, 2 h, 5 h, 10 h after the first try.
DEFAULT_WEBHOOK_RETRY_SCHEDULE_S = (5, 300, 1800, 7200, 18000, 36000)


class Limits(EnvSettings):
    """Quota, quality caps and timings. Defaults are the seed's."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    # Rate limiting (the seed: 5 renders per hour per user).
    renders_per_hour: int = Field(5, ge=1, le=1_000_000)
    rate_window_ms: int = Field(60 * 60 * 1000, ge=1)

    # Quality caps.
    max_width: int = Field(1920, ge=16, le=7680)
    max_height: int = Field(1080, ge=16, le=4320)
    min_dimension: int = Field(16, ge=2)
    max_duration_seconds: int = Field(20, ge=1)
    max_duration_frames: int = Field(20 * 30, ge=1)

    # Timeouts and cadence.
    render_timeout_ms: int = Field(60_000, ge=1_000)
    render_cost_budget_ms: int | None = Field(None, ge=100)
    """``RENDERLAB_RENDER_COST_BUDGET_MS``: the most drawing and encoding a render may be
    estimated to need at submit (``render.cost``); default a third of the render timeout."""
    poll_interval_ms: int = Field(2_000, ge=100)
    progress_min_interval_ms: int = Field(250, ge=0)

    # Pipeline robustness.
    lease_ms: int = Field(10_000, ge=500)
    max_render_attempts: int = Field(2, ge=1, le=10)
    pending_redispatch_ms: int = Field(5_000, ge=100)
    min_chunk_frames: int = Field(20, ge=1)
    # Cluster mode: frames per chunk task (a 600-frame render fans out into 4 chunks).
    chunk_frames: int = Field(150, ge=1)
    # Cluster mode: transient failures of a task (storage, database) are retried this many
    # times, this far apart; a composition that cannot render is never retried.
    celery_retry_delay_s: float = Field(1.0, ge=0)
    celery_max_retries: int = Field(2, ge=0, le=10)
    # Cluster mode: the hard time limit of a task is this far past the soft one (the render
    # timeout), so a task that catches the soft limit has time to record the failure.
    celery_hard_limit_grace_s: int = Field(15, ge=1)
    # Cluster mode: how long publishing to the broker waits for a connection.
    broker_connect_timeout_s: float = Field(5.0, gt=0)
    # Start messages waiting for the broker in one API process; past that they are dropped and
    # the reconciler sends them again (their renders stay pending, nothing is lost).
    dispatch_queue_max: int = Field(1_000, ge=1)
    # How long an embedded render process may take to start and claim its render; the render
    # timeout counts from the claim, so a slow start (a cold process server) is not held
    # against the render.
    worker_start_timeout_ms: int = Field(30_000, ge=1_000)

    # Operations (issue 15): renders a user may have ``pending`` or ``rendering`` at once
    # (``RENDERLAB_MAX_CONCURRENT_RENDERS``), decided with the quota in the start transaction;
    # how long outputs and posters are kept after a render completes (``RENDERLAB_OUTPUT_TTL_S``;
    # 0 keeps them forever), enforced by the reconciler.
    max_concurrent_renders: int = Field(2, ge=1, le=10_000)
    output_ttl_s: int = Field(30 * 24 * 3600, ge=0)

    # Downloads and HTTP edges.
    download_url_ttl_s: int = Field(3600, ge=1)
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    idempotency_ttl_ms: int = Field(24 * 60 * 60 * 1000, ge=1)
    sse_keepalive_s: float = Field(15.0, gt=0)
    page_size_default: int = Field(20, ge=1)
    page_size_max: int = Field(100, ge=1)
    idempotency_key_max_chars: int = Field(255, ge=1, le=255)  # the column is String(255)

    # Live progress (events.py): one shared poll of ``renders.updated_at`` per process.
    events_poll_ms: int = Field(100, ge=10)
    # How far back each poll looks, so a row written with an earlier ``updated_at`` but committed
    # after the previous poll (a slow transaction, a worker clock slightly behind) is not missed.
    events_lookback_ms: int = Field(5_000, ge=0)
    # Up to this many watched renders, each poll names them (``id IN (...)``); beyond, it reads
    # every recent change and filters in memory.
    events_id_filter_max: int = Field(500, ge=0, le=10_000)

    # Identity (api/auth.py).
    token_ttl_s: int = Field(30 * 24 * 3600, ge=60)
    token_name_max_chars: int = Field(64, ge=1, le=200)
    max_token_chars: int = Field(8192, ge=256)  # refused before any decoding or key lookup
    jwt_leeway_s: int = Field(10, ge=0)
    jwks_cache_s: int = Field(300, ge=1)
    jwks_timeout_s: float = Field(5.0, gt=0)
    auth_cache_size: int = Field(10_000, ge=0)

    # Threads the API runs database work on (api/context.py explains why so few).
    api_db_threads: int | None = Field(None, ge=1, le=64)
    """``RENDERLAB_API_DB_THREADS``; unset: 1 on SQLite (one writer at a time, and its reads
    run on the event loop: a second thread only trades the GIL with the first, creations
    164/s with two against 223/s with one), 2 on PostgreSQL (``threads_for``)."""
    # ``Retry-After`` of a 503 while the database or the identity provider is away.
    unavailable_retry_after_s: int = Field(5, ge=1)

    # How long ``serve`` lets open requests (live-progress streams) finish on shutdown.
    shutdown_grace_s: int = Field(5, ge=1)

    # Still previews are immutable per (generation, frame, size): let browsers keep them.
    still_cache_max_age_s: int = Field(3600, ge=0)
    # Still previews are free of quota but not of CPU: a token bucket per user, and a bound on
    # stills drawn at once in one API process (api/stills_guard.py), so one user's flood
    # neither slows everyone else down nor grows the process by a frame buffer per request.
    stills_per_minute: int = Field(60, ge=1, le=1_000_000)
    stills_at_once: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=1024)

    # Webhooks (renderlab.webhooks): seconds between delivery attempts, given as ``5,300,...``
    # (one attempt, then one per entry); the whole of one attempt (connect, send, answer) is
    # held to ``webhook_timeout_s``; a leased event is another deliverer's after ``lease_ms``.
    webhook_retry_schedule_s: Annotated[tuple[int, ...], NoDecode] = (
        DEFAULT_WEBHOOK_RETRY_SCHEDULE_S
    )
    webhook_timeout_s: float = Field(10.0, gt=0, le=60)
    webhook_lease_ms: int = Field(60_000, ge=1_000)
    webhook_batch: int = Field(20, ge=1, le=1_000)

    @field_validator("webhook_retry_schedule_s", mode="before")
    @classmethod
    def _schedule(cls, value: Any) -> Any:
        """``"5,300,1800"`` from the environment; each delay a whole number of seconds in
        1..7 days, at most 20 of them, so a typo cannot retry forever or hammer a receiver."""
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",")]
            if not all(part.isdigit() for part in parts):
                raise ValueError("webhook_retry_schedule_s must be whole seconds, e.g. 5,300,1800")
            value = tuple(int(part) for part in parts)
        delays = tuple(value)
        if len(delays) > 20 or any(
            isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= 7 * 86400 for d in delays
        ):
            raise ValueError("webhook_retry_schedule_s: up to 20 delays of 1 s to 7 days each")
        return delays

    @model_validator(mode="after")
    def _consistent(self) -> Limits:
        if self.page_size_default > self.page_size_max:
            raise ValueError("page_size_default must not exceed page_size_max")
        if self.progress_min_interval_ms > self.poll_interval_ms:
            raise ValueError("progress_min_interval_ms must not exceed poll_interval_ms")
        if self.webhook_lease_ms <= self.webhook_timeout_s * 1000:
            raise ValueError("webhook_lease_ms must exceed webhook_timeout_s")
        return self

    def threads_for(self, dialect: str) -> int:
        """The API's database threads for a database of this dialect."""
        if self.api_db_threads is not None:
            return self.api_db_threads
        return 1 if dialect == "sqlite" else 2

    @property
    def render_timeout_s(self) -> float:
        return self.render_timeout_ms / 1000

    @property
    def render_cost_budget_s(self) -> float:
        """What an accepted render may be expected to take: a third of the timeout, unless
        ``render_cost_budget_ms`` says otherwise."""
        if self.render_cost_budget_ms is not None:
            return self.render_cost_budget_ms / 1000
        return self.render_timeout_s / 3

    def max_frames_at(self, fps: int) -> int:
        """The duration cap in frames at ``fps``: the tighter of the seconds and frames caps."""
        return min(self.max_frames_by_seconds(fps), self.max_duration_frames)

    def max_frames_by_seconds(self, fps: int) -> int:
        return self.max_duration_seconds * fps


@lru_cache(maxsize=1)
def get_limits() -> Limits:
    """The process-wide limits, read from the environment once."""
    return Limits()
