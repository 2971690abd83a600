"""Where videos and render segments live: one interface, a local and an S3 backend.

``open_storage`` turns ``RENDERLAB_STORAGE_URL`` into a backend. The S3 backend (and boto3) is
imported only when asked for, so local renders and the CLI do not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from renderlab.storage.base import (
    InvalidKey,
    LinkOptions,
    ObjectNotFound,
    SignedURL,
    Storage,
    StorageError,
    StorageUnreachable,
    validate_key,
    validate_prefix,
)
from renderlab.storage.local import LocalStorage

if TYPE_CHECKING:
    from renderlab.storage.s3 import S3Storage

__all__ = [
    "InvalidKey",
    "LinkOptions",
    "LocalStorage",
    "ObjectNotFound",
    "S3Storage",
    "SignedURL",
    "Storage",
    "StorageError",
    "StorageUnreachable",
    "open_storage",
    "validate_key",
    "validate_prefix",
]


def open_storage(
    url: str,
    *,
    secret: bytes,
    public_url: str,
    s3_endpoint_url: str | None = None,
    s3_region: str | None = None,
) -> Storage:
    """The backend for ``file:///abs/path`` or ``s3://bucket[/prefix]``.

    ``secret`` and ``public_url`` serve the local backend's signed URLs; S3 signs with its own
    credentials. Nothing touches the disk or the network here: call ``check_writable()`` (and
    ``ensure_bucket()`` for S3) at startup to find problems early.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in {"", "localhost"} or parts.query or parts.fragment:
            raise ValueError(
                f"RENDERLAB_STORAGE_URL {url!r} is not a local directory URL; "
                "use file:///absolute/path"
            )
        return LocalStorage(unquote(parts.path), secret=secret, public_url=public_url)
    if scheme == "s3":
        from renderlab.storage.s3 import S3Storage

        if not parts.netloc or parts.query or parts.fragment:
            raise ValueError(f"RENDERLAB_STORAGE_URL {url!r} needs a bucket: s3://BUCKET[/PREFIX]")
        return S3Storage(
            parts.netloc,
            unquote(parts.path).strip("/"),
            endpoint_url=s3_endpoint_url or None,
            region=s3_region or None,
        )
    raise ValueError(
        f"RENDERLAB_STORAGE_URL {url!r} is not supported; use file:///absolute/path or "
        "s3://BUCKET[/PREFIX]"
    )


def __getattr__(name: str) -> object:
    # ``from renderlab.storage import S3Storage`` without importing boto3 for everyone.
    if name == "S3Storage":
        from renderlab.storage.s3 import S3Storage

        return S3Storage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
