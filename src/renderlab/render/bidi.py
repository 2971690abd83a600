"""Bidirectional levels for one paragraph, and the visual order of runs on a line.

When one line mixes fonts (Hebrew from a fallback font between Latin words of the primary one)
raqm can only order the characters inside each single-font run, so the order of the runs is
decided here, with the Unicode Bidirectional Algorithm (UAX #9) in the form an HTML block with
``direction: ltr`` gets: paragraph level 0, weak and neutral types resolved (W1-W7, N1-N2,
I1-I2), trailing whitespace reset (L1) and runs reversed by level (L2). Explicit embeddings and
isolates are treated as neutrals: they are rare in generated text and never make this fail.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Container, Sequence
from typing import TypeVar

T = TypeVar("T")

_STRONG_R = {"R", "AL"}
_NEUTRAL = {
    "B",
    "S",
    "WS",
    "ON",
    "BN",
    "LRE",
    "LRO",
    "RLE",
    "RLO",
    "PDF",
    "LRI",
    "RLI",
    "FSI",
    "PDI",
}
_WHITESPACE = {"WS", "S", "B", "BN", "LRE", "LRO", "RLE", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"}


def levels(text: str) -> list[int]:
    """The embedding level of each character of a paragraph whose base direction is LTR."""
    types = [unicodedata.bidirectional(ch) or "L" for ch in text]
    if not any(t in _STRONG_R or t == "AN" for t in types):
        return [0] * len(text)
    types = _resolve_neutrals(_resolve_weak(types))
    # I1: at level 0, R goes up one level, numbers up two.
    return [1 if t == "R" else 2 if t in ("AN", "EN") else 0 for t in types]


def _runs(types: Sequence[str], kinds: Container[str]) -> list[tuple[int, int]]:
    """The maximal runs ``[i, j)`` of types in ``kinds``."""
    runs, i, n = [], 0, len(types)
    while i < n:
        if types[i] in kinds:
            j = i
            while j < n and types[j] in kinds:
                j += 1
            runs.append((i, j))
            i = j
        else:
            i += 1
    return runs


def _resolve_weak(types: list[str]) -> list[str]:
    """Rules W1 to W7 (weak types), for a paragraph at level 0 without embeddings."""
    n = len(types)
    # W1: non-spacing marks take the type of what precedes them.
    prev = "L"
    for i, t in enumerate(types):
        if t == "NSM":
            types[i] = prev if prev not in ("LRI", "RLI", "FSI", "PDI") else "ON"
        prev = types[i]
    # W2, W3: European numbers after Arabic letters are Arabic numbers; AL is R.
    last_strong = "L"
    for i, t in enumerate(types):
        if t in ("L", "R", "AL"):
            last_strong = t
        elif t == "EN" and last_strong == "AL":
            types[i] = "AN"
    types = ["R" if t == "AL" else t for t in types]
    # W4: a single separator between two numbers of the same kind joins them.
    for i in range(1, n - 1):
        if types[i] == "ES" and types[i - 1] == "EN" == types[i + 1]:
            types[i] = "EN"
        elif types[i] == "CS" and types[i - 1] == types[i + 1] and types[i - 1] in ("EN", "AN"):
            types[i] = types[i - 1]
    # W5: terminators next to European numbers become numbers.
    for i, j in _runs(types, ("ET",)):
        if (i > 0 and types[i - 1] == "EN") or (j < n and types[j] == "EN"):
            types[i:j] = ["EN"] * (j - i)
    # W6: remaining separators and terminators are neutral. W7: EN after L (or sos) is L.
    types = ["ON" if t in ("ES", "ET", "CS") else t for t in types]
    last_strong = "L"
    for i, t in enumerate(types):
        if t in ("L", "R"):
            last_strong = t
        elif t == "EN" and last_strong == "L":
            types[i] = "L"
    return types


def _resolve_neutrals(types: list[str]) -> list[str]:
    """N1, N2: neutrals between same-direction text take it; others take the embedding's (L)."""
    n = len(types)
    for i, j in _runs(types, _NEUTRAL):
        before = "L" if i == 0 else _direction(types[i - 1])
        after = "L" if j == n else _direction(types[j])
        fill = before if before == after else "L"
        types[i:j] = [fill] * (j - i)
    return types


def _direction(t: str) -> str:
    return "R" if t in ("R", "AN", "EN") else "L"


def line_levels(text: str, paragraph_levels: Sequence[int]) -> list[int]:
    """L1: whitespace at the end of a line goes back to the paragraph level."""
    out = list(paragraph_levels)
    i = len(text) - 1
    while i >= 0 and (unicodedata.bidirectional(text[i]) in _WHITESPACE or text[i] == " "):
        out[i] = 0
        i -= 1
    return out


def visual_order(items: Sequence[T], item_levels: Sequence[int]) -> list[T]:
    """L2: reverse every maximal sequence at or above each level, from the highest down to 1."""
    order = list(range(len(items)))
    if not item_levels:
        return []
    highest = max(item_levels)
    lvls = list(item_levels)
    for level in range(highest, 0, -1):
        i = 0
        while i < len(order):
            if lvls[i] >= level:
                j = i
                while j < len(order) and lvls[j] >= level:
                    j += 1
                order[i:j] = order[i:j][::-1]
                lvls[i:j] = lvls[i:j][::-1]
                i = j
            else:
                i += 1
    return [items[k] for k in order]
