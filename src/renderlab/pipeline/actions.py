"""Download URLs, signed when they are read (REST and SSE alike), never stored.

A signed URL expires after ``limits.download_url_ttl_s``; the render keeps only its
``output_key``, and every read of a complete render signs that key again through
``services.storage``. Nothing that can go stale is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from renderlab import store
from renderlab.models import RenderStatus
from renderlab.render.formats import get_format
from renderlab.services import Services
from renderlab.storage import LinkOptions, SignedURL
from renderlab.storage.disposition import with_extension


class RenderNotComplete(Exception):
    """The render has no video yet (or never will): there is nothing to download."""


class _Stored(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def output_key(self) -> str | None: ...
    @property
    def poster_key(self) -> str | None: ...
    @property
    def codec(self) -> str: ...
    @property
    def output_expired(self) -> bool: ...


@dataclass(frozen=True)
class RenderURLs:
    """The signed URLs a reader of a render sees: both None until it is complete, and again
    once its output expired or was deleted."""

    output_url: str | None = None
    poster_url: str | None = None


POSTER_CONTENT_TYPE = "image/png"


def download_filename(render_id: str, codec: str = "h264", filename: str | None = None) -> str:
    """What a browser saves the output as: ``render-<id>.mp4`` (``.webm``, ``.mov``, ``.gif``),
    or the caller's ``filename`` cleaned and given the codec's extension."""
    extension = get_format(codec).extension
    if filename is None:
        return f"render-{render_id}{extension}"
    return with_extension(filename, extension)


def sign(
    services: Services,
    key: str,
    filename: str,
    *,
    content_type: str,
    disposition: str = "attachment",
) -> SignedURL:
    """A download URL for ``key`` valid for ``limits.download_url_ttl_s`` from now, served as
    ``content_type`` with that disposition."""
    link = LinkOptions(
        filename,
        services.limits.download_url_ttl_s,
        disposition=disposition,
        content_type=content_type,
        now=services.clock() / 1000,
    )
    return services.storage.signed_url(key, link)


def sign_output(
    services: Services,
    render: _Stored,
    disposition: str = "attachment",
    filename: str | None = None,
) -> SignedURL:
    """The output's URL, served with its codec's Content-Type and file extension."""
    assert render.output_key is not None
    return sign(
        services,
        render.output_key,
        download_filename(render.id, render.codec, filename),
        content_type=get_format(render.codec).content_type,
        disposition=disposition,
    )


def has_output(render: _Stored) -> bool:
    """Whether the render has an output to hand out (complete, stored, not expired)."""
    return (
        render.status == RenderStatus.COMPLETE
        and bool(render.output_key)
        and not render.output_expired
    )


def signed_urls(services: Services, render: _Stored) -> RenderURLs:
    """The output and poster URLs a reader sees, signed now."""
    if not has_output(render) or render.output_key is None:
        return RenderURLs()
    output = sign_output(services, render)
    poster = None
    if render.poster_key:
        name = f"render-{render.id}.png"
        poster = sign(services, render.poster_key, name, content_type=POSTER_CONTENT_TYPE).url
    return RenderURLs(output.url, poster)


def download_url(
    services: Services,
    user_id: str,
    render_id: str,
    *,
    disposition: str = "attachment",
    filename: str | None = None,
) -> SignedURL:
    """A new signed URL for the owner's complete render (another user's is NotFound), served
    ``inline`` or as an ``attachment`` named ``filename`` (its extension forced to the
    codec's)."""
    with services.db.read_one() as connection:
        render = store.find(connection, render_id, user_id=user_id)
    if render is None:
        raise store.NotFound("render not found")
    if render.status != RenderStatus.COMPLETE or not render.output_key:
        raise RenderNotComplete(
            f"This render is {render.status}; a download URL exists once it is complete."
        )
    return sign_output(services, render, disposition, filename)
