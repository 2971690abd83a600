"""The schema: users own generations, generations have renders, the limiter keeps its state.

The ``renders`` table carries every field of the seed's Convex table in snake_case, the render
settings, and what the pipeline needs to be crash-safe (lease, attempts) and to re-sign URLs
(output_key). Times are epoch milliseconds, as the seed stored them. Convex appends
``_creationTime`` to every index, so ``by_user`` is ``(user_id, created_at)`` here, which is
also what newest-first paging needs.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from renderlab.clock import now_ms
from renderlab.ids import new_id


class RenderStatus(StrEnum):
    """Where a render (or one of its chunks) is in its life; the database stores the values,
    which are the seed's strings. A ``str`` enum, so a value read back from a column compares
    equal to its member."""

    PENDING = "pending"
    RENDERING = "rendering"
    COMPLETE = "complete"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


RENDER_STATUSES = tuple(status.value for status in RenderStatus)
TERMINAL_STATUSES = frozenset({RenderStatus.COMPLETE, RenderStatus.FAILED})
GENERATION_STATUSES = (
    RenderStatus.PENDING.value,
    RenderStatus.COMPLETE.value,
    RenderStatus.FAILED.value,
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _checks(statuses: tuple[str, ...], **named: str) -> tuple[CheckConstraint, ...]:
    """A table's check constraints: ``status`` among ``statuses``, then one per keyword (its
    name) with the SQL condition it is given, in that order."""
    return (
        CheckConstraint(_in("status", statuses), name="status"),
        *(CheckConstraint(condition, name=name) for name, condition in named.items()),
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _id_column() -> Mapped[str]:
    return mapped_column(String(26), primary_key=True, default=new_id)


class Leased:
    """The columns of a row that one process at a time works on under a lease: how often it
    was tried, who holds it until when, and when it last changed (the reconciler's clock)."""

    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger, default=now_ms, onupdate=now_ms)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = _id_column()
    token_identifier: Mapped[str] = mapped_column(String(512), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(200))
    image_url: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class Generation(Base):
    __tablename__ = "generations"
    __table_args__ = (
        *_checks(GENERATION_STATUSES),
        Index("by_user_created", "user_id", "created_at"),
    )

    id: Mapped[str] = _id_column()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    prompt: Mapped[str | None] = mapped_column(Text)
    animation_props: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=RenderStatus.COMPLETE.value)
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


def _where_set(name: str, *columns: str) -> Index:
    """An index of only the rows where its last column is set (migration 0004): a new render
    leaves it null, and its readers always name a value, which implies ``IS NOT NULL``."""
    where = text(f"{columns[-1]} IS NOT NULL")
    return Index(name, *columns, sqlite_where=where, postgresql_where=where)


class Render(Leased, Base):
    __tablename__ = "renders"
    __table_args__ = (
        *_checks(
            RENDER_STATUSES,
            progress="progress >= 0 AND progress <= 100",
            size="width > 0 AND height > 0",
            frames="duration_in_frames > 0 AND fps > 0",
            attempts="attempts >= 0",
        ),
        Index("by_user", "user_id", "created_at"),
        Index("by_generation", "generation_id", "created_at"),
        Index("by_status", "status", "created_at"),
        Index("by_updated", "updated_at"),
        _where_set("by_cache_key", "user_id", "cache_key"),
        Index("by_user_status", "user_id", "status"),  # the concurrency cap's count
        _where_set("by_expires", "expires_at"),
        _where_set("by_output_key", "output_key"),
        _where_set("by_poster_key", "poster_key"),  # who else references a file (delete)
    )

    id: Mapped[str] = _id_column()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    generation_id: Mapped[str] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"))
    # The backend's job id (the seed's ``renderId``): column ``render_id``, API field ``render_id``.
    job_id: Mapped[str | None] = mapped_column("render_id", String(64))
    bucket_name: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=RenderStatus.PENDING.value)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    output_url: Mapped[str | None] = mapped_column(Text)
    output_size: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    completed_at: Mapped[int | None] = mapped_column(BigInteger)

    # Render settings.
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    fps: Mapped[int] = mapped_column(Integer)
    codec: Mapped[str] = mapped_column(String(16), default="h264")
    duration_in_frames: Mapped[int] = mapped_column(Integer)

    # Pipeline bookkeeping.
    output_key: Mapped[str | None] = mapped_column(String(512))
    started_at: Mapped[int | None] = mapped_column(BigInteger)
    heartbeat_at: Mapped[int | None] = mapped_column(BigInteger)
    quota_refunded: Mapped[bool] = mapped_column(Boolean, default=False)

    # Outputs, integration and retention (revision 0002). ``metadata`` is the API's name; the
    # attribute cannot be, since declarative classes reserve it.
    poster_frame: Mapped[int | None] = mapped_column(Integer)
    poster_key: Mapped[str | None] = mapped_column(String(512))
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    render_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    webhook_url: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(32))
    expires_at: Mapped[int | None] = mapped_column(BigInteger)
    output_expired: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    cache_key: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))


class RateLimitState(Base):
    """One row per (limit name, key): the Convex component's ``rateLimits`` table, unsharded."""

    __tablename__ = "rate_limits"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    ts: Mapped[int] = mapped_column(BigInteger)


class IdempotencyKey(Base):
    """A ``POST /v1/renders`` replayed with the same key returns the first render."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    render_id: Mapped[str] = mapped_column(ForeignKey("renders.id", ondelete="CASCADE"))
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class RenderChunk(Leased, Base):
    """One frame range of a render, encoded to a segment by whichever worker claims it."""

    __tablename__ = "render_chunks"
    __table_args__ = _checks(
        RENDER_STATUSES,
        range="start_frame >= 0 AND end_frame > start_frame",
        done="frames_done >= 0 AND frames_done <= end_frame - start_frame",
    )

    render_id: Mapped[str] = mapped_column(
        ForeignKey("renders.id", ondelete="CASCADE"), primary_key=True
    )
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    start_frame: Mapped[int] = mapped_column(Integer)
    end_frame: Mapped[int] = mapped_column(Integer)
    frames_done: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default=RenderStatus.PENDING.value)
    segment_key: Mapped[str | None] = mapped_column(String(512))


WEBHOOK_EVENT_STATUSES = ("pending", "delivered", "failed")


class WebhookEvent(Leased, Base):
    """The outbox: one row per webhook event, written in the transaction that ends the render.

    A delivery loop leases due rows (``lease_owner`` / ``lease_expires_at``) so two processes
    never deliver the same attempt, and a crash between the render's end and the delivery loses
    nothing. ``render_id`` is not a foreign key: the event of a render deleted while running
    (``render.failed``, cancelled) is still delivered.
    """

    __tablename__ = "webhook_events"
    __table_args__ = (
        *_checks(WEBHOOK_EVENT_STATUSES, attempts="attempts >= 0"),
        Index("by_due", "status", "next_attempt_at"),
        Index("by_render", "render_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    render_id: Mapped[str] = mapped_column(String(26))
    user_id: Mapped[str] = mapped_column(String(26))
    type: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    next_attempt_at: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class WebhookDelivery(Base):
    """One attempt at delivering a webhook event, as ``GET .../webhook-deliveries`` lists it."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("by_render_at", "render_id", "at"),)

    id: Mapped[str] = _id_column()
    event_id: Mapped[str] = mapped_column(ForeignKey("webhook_events.id", ondelete="CASCADE"))
    render_id: Mapped[str] = mapped_column(String(26))
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
