"""Opaque, unguessable, time-ordered ids (ULID strings): never sequential integers."""

from ulid import ULID


def new_id() -> str:
    return str(ULID())


def is_id(value: str) -> bool:
    """Cheap shape check so garbage ids are rejected before they reach the database."""
    if len(value) != 26:
        return False
    try:
        ULID.from_str(value)
    except ValueError:
        return False
    return True
