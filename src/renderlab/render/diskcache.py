"""Results a render process keeps for the next one, in the user's cache directory.

Only what is derived from its key alone and was checked when it was made: the band's flat
slices (x264's keyframe slices of a flat background, :mod:`renderlab.render.band`), which
cost a render process 20-55 ms of its first picture here, most of it the kernel handing a
fresh process the 11 MB x264 and the check decode touch. A ``renderlab render`` started from
a script reuses what the previous one made, as a server's warm render processes reuse it in
memory.

Each entry is one file, written whole (a temporary file renamed over it) and prefixed with a
digest of its key and contents: a torn, truncated or altered file reads as missing and is
made again, never used. Nothing here is required: a directory that cannot be written to is a
cache that keeps nothing.

``RENDERLAB_CACHE_DIR`` names the directory (default ``$XDG_CACHE_HOME/renderlab``, else
``~/.cache/renderlab``); ``RENDERLAB_CACHE_DIR=off`` keeps nothing.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

OFF = "off"


def cache_dir() -> Path | None:
    """The cache's directory, or None when ``RENDERLAB_CACHE_DIR`` is ``off``."""
    value = os.environ.get("RENDERLAB_CACHE_DIR", "")
    if value == OFF:
        return None
    if value:
        return Path(value)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "renderlab"


def _entry(kind: str, key: bytes) -> Path | None:
    directory = cache_dir()
    return None if directory is None else directory / kind / hashlib.sha256(key).hexdigest()


def _digest(key: bytes, data: bytes) -> bytes:
    return hashlib.sha256(len(key).to_bytes(8, "big") + key + data).digest()


def load(kind: str, key: bytes) -> bytes | None:
    """What :func:`store` kept for ``key``, or None (never kept, or not intact)."""
    path = _entry(kind, key)
    if path is None:
        return None
    try:
        blob = path.read_bytes()
    except OSError:
        return None
    digest, data = blob[:32], blob[32:]
    return data if digest == _digest(key, data) else None


def store(kind: str, key: bytes, data: bytes) -> None:
    """Keep ``data`` for ``key``; silently nothing if the directory cannot be written."""
    path = _entry(kind, key)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".new-", dir=path.parent)
    except OSError:
        return
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(_digest(key, data) + data)
        os.replace(temporary, path)
    except OSError:
        Path(temporary).unlink(missing_ok=True)
