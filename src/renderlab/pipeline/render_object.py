"""The render object (contract: "The render object") as plain JSON values, built from a render
row or snapshot without the HTTP layer: the API's ``RenderOut`` and the webhook events are
both made from :func:`render_fields`, so what a receiver gets is exactly what
``GET /v1/renders/{id}`` answers.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from renderlab.clock import ms_to_rfc3339
from renderlab.models import User


def render_fields(render: Any, token_identifier: str, urls: Any = None) -> dict[str, Any]:
    """The render object's fields in the contract's order, from an ORM ``Render`` or a
    ``RenderSnapshot``; ``urls`` (``output_url``, ``poster_url``) are signed for this read."""
    return {
        "id": render.id,
        "user_id": token_identifier,
        "generation_id": render.generation_id,
        "render_id": render.job_id,
        "bucket_name": render.bucket_name,
        "status": str(render.status),
        "progress": render.progress,
        "output_url": None if urls is None else urls.output_url,
        "output_size": render.output_size,
        "error": render.error,
        "created_at": ms_to_rfc3339(render.created_at) or "",
        "completed_at": ms_to_rfc3339(render.completed_at),
        "width": render.width,
        "height": render.height,
        "fps": render.fps,
        "codec": render.codec,
        "duration_in_frames": render.duration_in_frames,
        "poster_frame": render.poster_frame,
        "poster_url": None if urls is None else urls.poster_url,
        "metadata": render.render_metadata,
        "webhook_url": render.webhook_url,
        "warnings": list(render.warnings or ()),
        "error_code": render.error_code,
        "expires_at": ms_to_rfc3339(render.expires_at),
        "output_expired": bool(render.output_expired),
    }


def token_identifier_of(reader: Connection | Session, user_id: str) -> str:
    """The ``user_id`` the API shows for a user row (its token identifier, never the row id)."""
    statement = select(User.token_identifier).where(User.id == user_id)
    value = reader.execute(statement).scalar_one_or_none()
    return value or ""
