"""Where a render's files are stored: the key scheme, in one place.

A key ends up in the signed download URL of the local backend (``/files/{key}``) and in the
S3 object URL, so it must say nothing about who owns the file: the first scheme,
``renders/{user_id}/{render_id}.mp4``, put the internal user row id in every link a user
shared. Keys are now named by the render alone (the id the API shows its owner anyway).

Only NEW renders get these keys. A render stores its ``output_key`` when it completes, and
downloads, retention and deletion always use that stored key, so renders finished under the
old scheme stay downloadable where they are.
"""

from __future__ import annotations

import re

_EXTENSION = re.compile(r"[a-z0-9]{1,8}")


def output_key(render_id: str, extension: str = "mp4") -> str:
    """The key of a render's output video (``extension`` without the dot: mp4, webm, ...)."""
    return _key("renders", render_id, extension)


def poster_key(render_id: str, extension: str = "png") -> str:
    """The key of a render's poster image."""
    return _key("posters", render_id, extension)


def _key(folder: str, render_id: str, extension: str) -> str:
    if not render_id or "/" in render_id or not _EXTENSION.fullmatch(extension):
        raise ValueError(f"cannot make a storage key of {render_id!r} and {extension!r}")
    return f"{folder}/{render_id}.{extension}"
