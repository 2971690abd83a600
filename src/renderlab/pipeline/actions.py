"""Download URLs, signed when they are read (REST and SSE alike), never stored.

A signed URL expires after ``limits.download_url_ttl_s``; the render keeps only its
``output_key``, and every read of a complete render signs that key again through
``services.storage``. Nothing that can go stale is written.
"""

from __future__ import annotations

from typing import Protocol

from renderlab import store
from renderlab.models import RenderStatus
from renderlab.services import Services
from renderlab.storage import SignedURL


class RenderNotComplete(Exception):
    """The render has no video yet (or never will): there is nothing to download."""


class _Stored(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def output_key(self) -> str | None: ...


def download_filename(render_id: str) -> str:
    """What a browser saves the video as."""
    return f"render-{render_id}.mp4"


def sign(services: Services, render_id: str, key: str) -> SignedURL:
    """A download URL for ``key`` valid for ``limits.download_url_ttl_s`` from now."""
    return services.storage.signed_url(
        key,
        expires_in_s=services.limits.download_url_ttl_s,
        filename=download_filename(render_id),
        now=services.clock() / 1000,
    )


def output_url(services: Services, render: _Stored) -> str | None:
    """The ``output_url`` a reader sees: signed now for a complete render, else None."""
    if render.status != RenderStatus.COMPLETE or not render.output_key:
        return None
    return sign(services, render.id, render.output_key).url


def download_url(services: Services, user_id: str, render_id: str) -> SignedURL:
    """A new signed URL for the owner's complete render (another user's is NotFound)."""
    with services.db.read_one() as connection:
        render = store.find(connection, render_id, user_id=user_id)
    if render is None:
        raise store.NotFound("render not found")
    if render.status != RenderStatus.COMPLETE or not render.output_key:
        raise RenderNotComplete(
            f"This render is {render.status}; a download URL exists once it is complete."
        )
    return sign(services, render.id, render.output_key)
