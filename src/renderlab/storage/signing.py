"""HMAC signatures for local download URLs.

A URL carries the key, an expiry, the download filename, and (when not the defaults) the
disposition (``inline`` or ``attachment``) and the Content-Type it is served with; the signature
covers them all so none can be changed (a longer life, another user's file, a misleading name,
an attachment turned inline) without the server secret. With the defaults the signed message
is the first version's, so links issued before dispositions existed keep working. Expiry is
integer epoch seconds, written in the URL in one canonical form so that the bytes that were
signed are the bytes that are checked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from typing import NamedTuple

_CONTEXT = b"renderlab/download-url/v1\x00"
_EXPIRES = re.compile(r"[1-9][0-9]{0,11}", re.ASCII)
_PLAIN = re.compile(r"[ !#-\[\]-~]*", re.ASCII)  # printable ASCII but '"' and '\\'


DEFAULT_DISPOSITION = "attachment"


class LinkFields(NamedTuple):
    """What a link's signature covers."""

    key: str
    expires: int
    filename: str
    disposition: str = DEFAULT_DISPOSITION
    content_type: str | None = None


def _message(link: LinkFields) -> bytes:
    # JSON keeps the fields unambiguous whatever characters the filename holds; ensure_ascii
    # makes the encoding total (even lone surrogates from a hostile query string).
    fields: list[object] = [link.key, link.expires, link.filename]
    if link.disposition != DEFAULT_DISPOSITION or link.content_type is not None:
        fields += [link.disposition, link.content_type]
    if all(type(f) is int or (type(f) is str and _PLAIN.fullmatch(f)) for f in fields):
        # What json.dumps writes for these (no character to escape), without its machinery:
        # every render read signs two URLs.
        text = ", ".join(f'"{f}"' if type(f) is str else str(f) for f in fields)
        return _CONTEXT + f"[{text}]".encode("ascii")
    return _CONTEXT + json.dumps(fields, ensure_ascii=True).encode("ascii")


def sign(link: LinkFields, secret: bytes) -> str:
    """The URL-safe base64 (unpadded) HMAC-SHA256 of key, expiry, filename, disposition and
    Content-Type."""
    if not secret:
        raise ValueError("the signing secret must not be empty")
    digest = hmac.digest(secret, _message(link), hashlib.sha256)
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify(link: LinkFields, sig: str, secret: bytes) -> bool:
    """Whether ``sig`` is the signature of ``link``, compared in constant time.

    Checks the signature only: expiry is :func:`is_expired`, separate so the route can tell an
    expired link ("ask for a new one") from a forged one.
    """
    expected = sign(link, secret).encode("ascii")
    return hmac.compare_digest(expected, sig.encode("utf-8", "surrogatepass"))


def parse_expires(value: str | None) -> int | None:
    """The expiry from a query string, or ``None`` unless it is canonical decimal epoch seconds.

    Leading zeros, signs, spaces and non-ASCII digits are refused so that one expiry has exactly
    one spelling.
    """
    if value is None or not _EXPIRES.fullmatch(value):
        return None
    return int(value)


def is_expired(expires: int, now: float | None = None) -> bool:
    """A link works strictly before its expiry second."""
    return (time.time() if now is None else now) >= expires
