"""Which strings can be stored and read back, and which text draws nothing.

Python strings can hold what neither database can keep faithfully: NUL (PostgreSQL refuses it
in text, SQLite truncates it in some drivers) and lone UTF-16 surrogates, which JSON carries as
``"\\ud800"`` escapes. A lone surrogate slips into a JSON column escaped, is committed, and then
every read that encodes the row to UTF-8 fails: one bad request would break a user's history
for good. So every string that comes in from outside (request fields, token claims) passes
:func:`storable` at the edge, before anything is written.

:func:`draws_nothing` is the other half of "text": a string of spaces, zero-width characters or
a lone BOM is valid Unicode, but a video of it is a blank frame, which is never what was meant.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Any

# Code points that render as nothing although their category says they are letters or symbols
# (fillers and blanks), and the combining ones that only select a variant of what precedes.
_BLANK = frozenset(
    {
        0x034F,  # combining grapheme joiner
        0x115F,  # hangul choseong filler
        0x1160,  # hangul jungseong filler
        0x17B4,  # khmer vowel inherent aq
        0x17B5,  # khmer vowel inherent aa
        0x180E,  # mongolian vowel separator
        0x2800,  # braille pattern blank
        0x3164,  # hangul filler
        0xFFA0,  # halfwidth hangul filler
    }
)
# Whitespace, controls, format characters (ZWSP, ZWJ, BOM, bidi marks, tags), unassigned,
# surrogates and private use: none of them draws a glyph of its own in our renderer.
_INVISIBLE_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf", "Cn", "Cs"})


def storable(value: str) -> str | None:
    """Why ``value`` cannot be stored and read back, or None when it can."""
    if "\x00" in value:
        return "must not contain NUL (\\u0000) characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must not contain lone UTF-16 surrogates (\\ud800-\\udfff)"
    return None


def check_storable(value: str) -> str:
    """``value`` unchanged, or ValueError saying why it cannot be stored (a pydantic
    validator: the error names the field it is attached to)."""
    problem = storable(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def unstorable_paths(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str, str]]:
    """``(dotted path, why)`` of every string in a JSON-like value (keys included) that cannot
    be stored, for free-form fields (metadata objects) whose strings no model field names."""
    if isinstance(value, str):
        problem = storable(value)
        if problem is not None:
            yield ".".join(str(part) for part in path), problem
    elif isinstance(value, dict):
        for key, item in value.items():
            problem = storable(key) if isinstance(key, str) else None
            if problem is not None:
                yield ".".join(str(part) for part in path), f"a key {problem}"
            else:
                yield from unstorable_paths(item, (*path, key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from unstorable_paths(item, (*path, index))


def is_invisible(char: str) -> bool:
    """Whether one code point draws nothing on its own."""
    code = ord(char)
    if code in _BLANK or 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF:
        return True  # (variation selectors)
    return char.isspace() or unicodedata.category(char) in _INVISIBLE_CATEGORIES


def draws_nothing(text: str) -> bool:
    """Whether every character of ``text`` is whitespace or invisible (ZWSP, ZWJ, BOM, ...)."""
    return all(is_invisible(char) for char in text)
