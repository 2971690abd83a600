"""Line layout of the text box, in composition pixels (1920x1080 unless the props say), as a
browser lays out the spec's CSS in a viewport of that size.

``white-space: pre-wrap`` (newlines break, spaces are kept and hang at a wrap),
``word-break: break-word`` (a word wider than the line is broken between grapheme clusters),
``text-align: center`` and the primary font's normal line height, the block centred in the
frame. Each grapheme cluster gets the first font that has all of its characters (per-glyph
fallback); a line is drawn as runs of one font and one direction, ordered by :mod:`bidi`.

The layout is independent of the output size: a smaller render scales it, so line breaks never
depend on the resolution.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache

import regex

from renderlab.render import bidi
from renderlab.render.fonts import (
    FontFace,
    covers,
    emoji_faces,
    fallback_chain,
    pil_font,
    text_direction,
    vertical_metrics,
)

FRAME_WIDTH = 1920
FRAME_HEIGHT = 1080
PADDING_X = 40  # each side; lines wrap at FRAME_WIDTH - 2 * PADDING_X
TAB_SIZE = 8
_GRAPHEME = regex.compile(r"\X")
_EPSILON = 1e-6


@dataclass(frozen=True)
class Run:
    """Text of one font and one direction, placed on its line (x is its left edge)."""

    text: str
    face: FontFace
    rtl: bool
    x: float
    width: float


@dataclass(frozen=True)
class Line:
    runs: tuple[Run, ...]
    baseline: float
    width: float


@dataclass(frozen=True)
class Layout:
    """Lines in 1080p composition pixels; ``top``/``bottom`` bound the block's line boxes."""

    lines: tuple[Line, ...]
    font_size: float
    optical_size: float
    top: float
    bottom: float
    ascent: float
    descent: float


@dataclass
class _Cluster:
    text: str
    level: int
    face: FontFace
    space: bool
    break_before: bool = False


def sanitize(text: str) -> str:
    """What the layout draws of arbitrary text: no lone surrogates, no control characters.

    Newline forms become ``\\n``; tabs become spaces to the next multiple of eight clusters.
    """
    text = "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n")
    text = text.replace("\u2029", "\n")
    if "\t" in text:
        out = []
        for paragraph in text.split("\n"):
            column = 0
            parts = []
            for cluster in _GRAPHEME.findall(paragraph):
                if cluster == "\t":
                    pad = TAB_SIZE - column % TAB_SIZE
                    parts.append(" " * pad)
                    column += pad
                else:
                    parts.append(cluster)
                    column += 1
            out.append("".join(parts))
        text = "\n".join(out)
    return "".join(ch for ch in text if ch == "\n" or unicodedata.category(ch) != "Cc")


def _ignorable(ch: str) -> bool:
    cp = ord(ch)
    return (
        unicodedata.category(ch) == "Cf"
        or 0xFE00 <= cp <= 0xFE0F
        or 0xE0100 <= cp <= 0xE01EF
        or 0x1F3FB <= cp <= 0x1F3FF  # skin tones: drawn by the emoji font with their base
    )


_EMOJI_BMP = set(
    "\u231a\u231b\u23e9\u23ea\u23eb\u23ec\u23f0\u23f3\u25fd\u25fe\u2614\u2615\u267f\u2693"
    "\u26a1\u26aa\u26ab\u26bd\u26be\u26c4\u26c5\u26ce\u26d4\u26ea\u26f2\u26f3\u26f5\u26fa"
    "\u26fd\u2705\u270a\u270b\u2728\u274c\u274e\u2753\u2754\u2755\u2757\u2795\u2796\u2797"
    "\u27b0\u27bf\u2b1b\u2b1c\u2b50\u2b55" + "".join(chr(c) for c in range(0x2648, 0x2654))
)


def _emoji_presentation(cluster: str) -> bool:
    first = ord(cluster[0])
    return (
        "\ufe0f" in cluster
        or "\u20e3" in cluster
        or (first >= 0x1F000 and not 0x1F100 <= first <= 0x1F1E5)
        or cluster[0] in _EMOJI_BMP
    )


def _ideographic(cluster: str) -> bool:
    """Clusters a line may break before or after without a space (UAX #14 class ID, roughly)."""
    cp = ord(cluster[0])
    return (
        0x2E80 <= cp <= 0x2FFF
        or 0x3040 <= cp <= 0x30FF
        or 0x3400 <= cp <= 0x4DBF
        or 0x4E00 <= cp <= 0x9FFF
        or 0xAC00 <= cp <= 0xD7AF
        or 0xF900 <= cp <= 0xFAFF
        or 0x20000 <= cp <= 0x3FFFF
        or _emoji_presentation(cluster)
    )


def _no_break_before(cluster: str) -> bool:
    cp = ord(cluster[0])
    return 0x3000 <= cp <= 0x303F or 0xFF00 <= cp <= 0xFFEF  # CJK closing punctuation and such


_UNKNOWN = object()  # a cluster the picker has not chosen for yet


class _FontPicker:
    """Per-cluster font choice: the first face that has every character the cluster needs."""

    _CACHE_SIZE = 8192  # clusters remembered (emptied when full: a server sees many texts)

    def __init__(self, primary: FontFace) -> None:
        self.primary = primary
        self._cache: dict[str, object] = {}  # a face, or None: the cluster takes its neighbour's

    # The fallbacks are found (pip registry, system font directories) only for a cluster the
    # primary font lacks or an emoji: most texts never need them.
    @cached_property
    def chain(self) -> list[FontFace]:
        return [self.primary, *(f for f in fallback_chain() if f != self.primary)]

    @cached_property
    def emoji(self) -> list[FontFace]:
        return list(emoji_faces())

    def pick(self, cluster: str, previous: FontFace | None) -> FontFace:
        """Like a browser: the first font of the list that has the glyphs, per cluster."""
        # One dict read: pickers are shared between threads (the API draws stills in several),
        # and another may empty the cache between a membership test and a read.
        found = self._cache.get(cluster, _UNKNOWN)
        if found is _UNKNOWN:
            needed = [ord(ch) for ch in cluster if not _ignorable(ch)]
            # A lone joiner or selector (nothing needed) is shaped with its neighbour.
            found = self._pick(cluster, needed) if needed else None
            if len(self._cache) >= self._CACHE_SIZE:
                self._cache.clear()
            self._cache[cluster] = found
        return found if isinstance(found, FontFace) else previous or self.primary

    def _pick(self, cluster: str, needed: list[int]) -> FontFace:
        if _emoji_presentation(cluster):
            candidates = self.emoji + self.chain
        elif all(covers(self.primary, cp) for cp in needed):
            return self.primary  # the chain starts with it
        else:
            candidates = self.chain
        for face in candidates:
            if all(covers(face, cp) for cp in needed):
                return face
        for face in candidates:
            if covers(face, needed[0]):
                return face
        return self.primary


@lru_cache(maxsize=16)
def _picker(primary: FontFace) -> _FontPicker:
    """One picker per primary face, its choices kept between layouts (a typewriter lays out
    every prefix of the same text)."""
    return _FontPicker(primary)


@lru_cache(maxsize=8192)
def measure(face: FontFace, size: float, optical_size: float, text: str, rtl: bool) -> float:
    """Advance width of ``text`` shaped in one face and direction, in px at ``size``."""
    if not text:
        return 0.0
    font = pil_font(face, size, optical_size)
    width = font.getlength(text, direction=text_direction(rtl))
    if face.bitmap_size:
        width *= size / face.bitmap_size
    return float(width)


class _Measurer:
    def __init__(self, size: float, optical_size: float) -> None:
        self.size = size
        self.optical_size = optical_size

    def runs(self, clusters: Sequence[_Cluster]) -> list[tuple[str, FontFace, int]]:
        """Logical runs of one face and one level."""
        out: list[tuple[str, FontFace, int]] = []
        for c in clusters:
            if out and out[-1][2] == c.level and (out[-1][1] is c.face or out[-1][1] == c.face):
                out[-1] = (out[-1][0] + c.text, c.face, c.level)
            else:
                out.append((c.text, c.face, c.level))
        return out

    def width(self, clusters: Sequence[_Cluster]) -> float:
        return sum(
            measure(face, self.size, self.optical_size, text, level % 2 == 1)
            for text, face, level in self.runs(clusters)
        )


def _clusters(paragraph: str, picker: _FontPicker) -> list[_Cluster]:
    char_levels = bidi.levels(paragraph)
    out: list[_Cluster] = []
    offset = 0
    previous: FontFace | None = None
    for text in _GRAPHEME.findall(paragraph):
        face = picker.pick(text, previous)
        space = text.isspace()
        cluster = _Cluster(text, char_levels[offset], face, space)
        if out:
            before = out[-1]
            cluster.break_before = (
                (before.space and not space)
                or (before.text in ("-", "\u2010", "\u200b") and not space)
                or (
                    (_ideographic(text) or _ideographic(before.text))
                    and not space
                    and not _no_break_before(text)
                )
            )
        out.append(cluster)
        offset += len(text)
        previous = face
    return out


def _segments(clusters: list[_Cluster]) -> list[list[_Cluster]]:
    segments: list[list[_Cluster]] = []
    for c in clusters:
        if not segments or c.break_before:
            segments.append([c])
        else:
            segments[-1].append(c)
    return segments


def _trim(clusters: Sequence[_Cluster]) -> int:
    """Index after the last cluster that is not trailing whitespace."""
    end = len(clusters)
    while end > 0 and clusters[end - 1].space:
        end -= 1
    return end


def _break_lines(
    clusters: list[_Cluster], m: _Measurer, max_width: float
) -> list[tuple[list[_Cluster], bool]]:
    """Greedy line filling. Returns (clusters, soft) per line; soft means wrapped, not a newline."""
    lines: list[tuple[list[_Cluster], bool]] = []
    line: list[_Cluster] = []
    used = 0.0
    for segment in _segments(clusters):
        full = m.width(segment)
        trimmed = m.width(segment[: _trim(segment)])
        if line and used + trimmed > max_width + _EPSILON:
            lines.append((line, True))
            line, used = [], 0.0
        if not line and trimmed > max_width + _EPSILON:
            pieces = _break_word(segment, m, max_width)
            for piece in pieces[:-1]:
                lines.append((piece, True))
            segment = pieces[-1]
            full = m.width(segment)
        line.extend(segment)
        used += full
    lines.append((line, False))
    return lines


def _break_word(segment: list[_Cluster], m: _Measurer, max_width: float) -> list[list[_Cluster]]:
    """Split a segment wider than a line between clusters: as many as fit, at least one."""
    pieces: list[list[_Cluster]] = []
    rest = segment
    while rest:
        end = _trim(rest)
        if m.width(rest[:end]) <= max_width + _EPSILON:
            pieces.append(rest)
            break
        low, high = 1, end  # the longest prefix that fits (at least one cluster)
        while low < high:
            mid = (low + high + 1) // 2
            if m.width(rest[:mid]) <= max_width + _EPSILON:
                low = mid
            else:
                high = mid - 1
        pieces.append(rest[:low])
        rest = rest[low:]
    return pieces


def _place_line(
    clusters: list[_Cluster],
    soft: bool,
    m: _Measurer,
    max_width: float,
    baseline: float,
    centre_x: float = FRAME_WIDTH / 2,
) -> Line:
    end = _trim(clusters)
    trimmed_width = m.width(clusters[:end])
    if soft:
        drawn = clusters[:end]  # hanging spaces: neither drawn nor counted for centring
        width = trimmed_width
    else:
        drawn = clusters
        width = min(m.width(clusters), max(max_width, trimmed_width))
    text = "".join(c.text for c in drawn)
    char_levels = bidi.line_levels(text, [c.level for c in drawn for _ in c.text])
    offset = 0
    for c in drawn:
        c.level = char_levels[offset]
        offset += len(c.text)
    logical = m.runs(drawn)
    widths = [measure(f, m.size, m.optical_size, t, lv % 2 == 1) for t, f, lv in logical]
    visual = bidi.visual_order(list(zip(logical, widths, strict=True)), [r[2] for r in logical])
    x = centre_x - width / 2
    runs = []
    for (text_run, face, level), run_width in visual:
        runs.append(Run(text_run, face, level % 2 == 1, x, run_width))
        x += run_width
    return Line(tuple(runs), baseline, width)


def layout(
    text: str,
    primary: FontFace,
    font_size: float,
    frame_width: int = FRAME_WIDTH,
    frame_height: int = FRAME_HEIGHT,
) -> Layout:
    """Lay out ``text`` (any Unicode) in ``primary`` at ``font_size`` composition px, in a
    ``frame_width`` x ``frame_height`` composition (wrap at width - 80, centred in both)."""
    optical_size = float(font_size)
    metrics = vertical_metrics(primary)
    scale = font_size / metrics.units_per_em
    ascent = round(metrics.ascender * scale)
    descent = round(metrics.descender * scale)
    gap = round(metrics.line_gap * scale)
    line_height = ascent + descent + gap
    max_width = frame_width - 2 * PADDING_X
    m = _Measurer(float(font_size), optical_size)
    picker = _picker(primary)
    paragraphs = sanitize(text).split("\n")
    if len(paragraphs) > 1 and paragraphs[-1] == "":
        paragraphs.pop()  # a final newline opens no line of its own
    broken: list[tuple[list[_Cluster], bool]] = []
    for paragraph in paragraphs:
        broken.extend(_break_lines(_clusters(paragraph, picker), m, max_width))
    total = line_height * len(broken)
    top = frame_height / 2 - total / 2
    lines = tuple(
        _place_line(
            clusters, soft, m, max_width, top + i * line_height + gap / 2 + ascent, frame_width / 2
        )
        for i, (clusters, soft) in enumerate(broken)
    )
    return Layout(lines, float(font_size), optical_size, top, top + total, ascent, descent)
