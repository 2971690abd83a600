"""Download filenames and the ``Content-Disposition`` header both backends send.

Filenames come from users' prompts, so they can hold anything. They are cleaned once, when a URL
is signed, and the header is built the same way for the local route and for S3's
``response-content-disposition``, so a download is named the same whichever backend serves it.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

DEFAULT_FILENAME = "video.mp4"
MAX_FILENAME_LENGTH = 150

_UNSAFE = {"/", "\\", '"', "\x7f"}


def safe_filename(name: str) -> str:
    """A filename a browser will save as-is: no path separators, quotes or control characters.

    Keeps non-ASCII letters (the header carries them in ``filename*``), trims whitespace and
    length, and falls back to :data:`DEFAULT_FILENAME` when nothing usable is left. Idempotent.
    """
    if name.isascii() and name.isprintable() and not _UNSAFE.intersection(name):
        cleaned = name.strip(" .")  # the usual ``render-<id>.mp4``: nothing to clean per char
        if 0 < len(cleaned) <= MAX_FILENAME_LENGTH:
            return cleaned
    return _cleaned(name)


def _cleaned(name: str) -> str:
    """:func:`safe_filename`, character by character."""
    cleaned = "".join(
        "_" if ch in _UNSAFE else ch
        for ch in unicodedata.normalize("NFC", name)
        if unicodedata.category(ch)[0] != "C"  # control, format, surrogate, unassigned
    ).strip(" .")
    if len(cleaned) > MAX_FILENAME_LENGTH:
        stem, dot, ext = cleaned.rpartition(".")
        if dot and 0 < len(ext) <= 8:
            cleaned = stem[: MAX_FILENAME_LENGTH - len(ext) - 1].rstrip(" .") + "." + ext
        else:
            cleaned = cleaned[:MAX_FILENAME_LENGTH].rstrip(" .")
    return cleaned or DEFAULT_FILENAME


def ascii_fallback(name: str) -> str:
    """The ``filename=`` value for clients that ignore ``filename*``: accents dropped, the rest
    of the non-ASCII replaced by ``_``."""
    decomposed = unicodedata.normalize("NFKD", name)
    without_marks = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    ascii_only = "".join(ch if " " <= ch < "\x7f" else "_" for ch in without_marks)
    return ascii_only.replace('"', "_").replace("\\", "_") or DEFAULT_FILENAME


DISPOSITIONS = ("attachment", "inline")


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """``attachment`` (save it) or ``inline`` (show it in the browser) with an ASCII
    ``filename`` and an RFC 6266 / 5987 ``filename*``."""
    if disposition not in DISPOSITIONS:
        raise ValueError(f"disposition must be one of {', '.join(DISPOSITIONS)}")
    name = safe_filename(filename)
    encoded = quote(name, safe="")
    return f"{disposition}; filename=\"{ascii_fallback(name)}\"; filename*=UTF-8''{encoded}"


def with_extension(filename: str, extension: str) -> str:
    """``filename`` cleaned (:func:`safe_filename`) and ending in ``extension`` (``.webm``):
    a known media extension of another format is replaced, anything else kept and the right
    one appended, so a download is never saved under a misleading type."""
    name = safe_filename(filename)
    stem, dot, suffix = name.rpartition(".")
    if dot and f".{suffix.lower()}" == extension:
        return f"{stem}{extension}"
    if dot and stem and f".{suffix.lower()}" in MEDIA_EXTENSIONS:
        name = stem
    return safe_filename(name[: MAX_FILENAME_LENGTH - len(extension)] + extension)


MEDIA_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".webm", ".mkv", ".mov", ".gif", ".png", ".jpg", ".jpeg", ".avi", ".apng"}
)
