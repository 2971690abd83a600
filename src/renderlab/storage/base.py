"""The storage contract: one protocol, its errors, and the rules every key obeys.

Both backends import this module, so it holds nothing backend-specific. Keys are checked here,
before any backend sees them, so a key that could climb out of a directory or confuse an S3
listing never reaches the filesystem or the network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

MAX_KEY_LENGTH = 512
"""Far under S3's 1024-byte limit and common filesystem path limits, with room for a prefix."""

_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", re.ASCII)


class StorageError(Exception):
    """An I/O failure a person has to fix (read-only dir, full disk, S3 down, no credentials).

    The message is a sentence naming what failed and what to check; the original exception is
    chained as ``__cause__`` for logs.
    """


class ObjectNotFound(StorageError):
    """The key holds no object (never stored, or deleted)."""


class StorageUnreachable(StorageError):
    """The store did not answer at all (connection refused or timed out): unlike a refusal, it
    may well work a few seconds later, so the cluster's tasks wait longer before giving up."""


class InvalidKey(ValueError):
    """A key outside the allowed alphabet or shape; a programming error, never user input."""


@dataclass(frozen=True, slots=True)
class SignedURL:
    """A download URL and the UTC instant it stops working."""

    url: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class LinkOptions:
    """How a signed download link serves its object: the name a browser saves it as, for how
    many seconds it works, ``inline`` or as an ``attachment``, with which Content-Type
    (``None``: ``video/mp4``), issued at ``now`` (epoch seconds; ``None``: the real clock)."""

    filename: str
    expires_in_s: int
    disposition: str = "attachment"
    content_type: str | None = None
    now: float | None = None


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe object key, else raise :class:`InvalidKey`.

    A key is ``/``-separated segments of ``[A-Za-z0-9._-]``. No segment may be empty or start
    with a dot: that refuses ``.`` and ``..`` (path traversal), leading or doubled slashes
    (absolute paths, ambiguous S3 listings) and hidden names, which the local backend keeps for
    its own temporary files.
    """
    if not isinstance(key, str) or not key:
        raise InvalidKey("a storage key must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKey(f"a storage key must be at most {MAX_KEY_LENGTH} characters")
    for segment in key.split("/"):
        if not _SEGMENT.fullmatch(segment):
            raise InvalidKey(
                f"invalid storage key {key!r}: use '/'-separated segments of letters, digits, "
                "'.', '_' and '-', none empty or starting with '.'"
            )
    return key


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` without its trailing slash, validated like a key.

    Prefixes name folders: ``renders/abc`` and ``renders/abc/`` both mean every key that starts
    with ``renders/abc/``. Matching on folders rather than raw string prefixes keeps the two
    backends identical (``renders/ab`` never touches ``renders/abc/...``) and makes an empty
    prefix, which would mean "everything", impossible.
    """
    return validate_key(prefix[:-1] if isinstance(prefix, str) and prefix.endswith("/") else prefix)


@runtime_checkable
class Storage(Protocol):
    """Where finished videos and render segments live, seen the same way by every process.

    Methods are synchronous: callers are worker processes and threads, and the API calls them
    from its thread pool.
    """

    @property
    def bucket_name(self) -> str:
        """What the render row records as ``bucket_name`` (``"local"`` or the S3 bucket)."""
        ...

    def put_file(self, key: str, path: str | Path, content_type: str) -> int:
        """Store the file at ``path`` under ``key`` (replacing any object); return its size."""
        ...

    def get_file(self, key: str, dest_path: str | Path) -> Path:
        """Copy the object to ``dest_path``; raise :class:`ObjectNotFound` if there is none."""
        ...

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""
        ...

    def delete_prefix(self, prefix: str) -> None:
        """Remove every object under the folder ``prefix`` (see :func:`validate_prefix`)."""
        ...

    def signed_url(self, key: str, link: LinkOptions) -> SignedURL:
        """A URL that downloads the object as ``link.filename`` without other credentials,
        served ``inline`` or as an ``attachment`` with ``link.content_type`` (default
        ``video/mp4``); the signature covers both, so neither can be changed in the URL."""
        ...

    def check_writable(self) -> None:
        """Raise :class:`StorageError` unless an object can be written and deleted now."""
        ...
