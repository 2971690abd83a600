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


def message_parts(
    key: str,
    filename: str,
    disposition: str = DEFAULT_DISPOSITION,
    content_type: str | None = None,
) -> tuple[bytes, bytes]:
    """The signed message of a link, around its expiry: ``head + str(expires) + tail``.

    The message is the JSON array of the fields (key, expiry, filename, and disposition and
    Content-Type when not the defaults) after a context string; only the expiry changes from
    one signing of an object's link to the next, so a caller can keep the rest."""
    rest: list[str | None] = [filename]
    if disposition != DEFAULT_DISPOSITION or content_type is not None:
        rest += [disposition, content_type]
    head = f"[{_json(key)}, ".encode("ascii")
    tail = ", ".join(_json(field) for field in rest).encode("ascii")
    return _CONTEXT + head, b", " + tail + b"]"


def _json(value: str | None) -> str:
    # JSON keeps the fields unambiguous whatever characters the filename holds; ensure_ascii
    # makes the encoding total (even lone surrogates from a hostile query string). A plain
    # string (no character to escape) is written as json.dumps would, without its machinery.
    if type(value) is str and _PLAIN.fullmatch(value):
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=True)


def sign(link: LinkFields, secret: bytes) -> str:
    """The URL-safe base64 (unpadded) HMAC-SHA256 of key, expiry, filename, disposition and
    Content-Type."""
    parts = message_parts(link.key, link.filename, link.disposition, link.content_type)
    return sign_parts(parts, link.expires, secret)


def sign_parts(parts: tuple[bytes, bytes], expires: int, secret: bytes) -> str:
    """:func:`sign` given the link's :func:`message_parts`."""
    if not secret:
        raise ValueError("the signing secret must not be empty")
    message = parts[0] + str(int(expires)).encode("ascii") + parts[1]
    digest = hmac.digest(secret, message, hashlib.sha256)
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
