"""Opaque, unguessable, time-ordered ids (ULID strings): never sequential integers."""

import re

from ulid import ULID

# What ``ULID.from_str`` accepts (Crockford's base32 in either case, a first character that
# keeps the timestamp within 48 bits), as one compiled match: it runs on every request that
# names an id, and is about twenty times faster than decoding one (0.16 against 3 us here).
_ULID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}")


def new_id() -> str:
    return str(ULID())


def is_id(value: str) -> bool:
    """Cheap shape check so garbage ids are rejected before they reach the database."""
    return _ULID.fullmatch(value) is not None
