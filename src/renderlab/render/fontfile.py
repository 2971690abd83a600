"""Reads the few OpenType tables the layout needs and Pillow does not expose.

* ``cmap``: which characters a font has, for per-glyph fallback (Pillow draws a missing
  character as a box without saying so).
* ``head``/``hhea``/``OS/2``: the font's own ascender, descender and line gap, from which a
  browser derives the "normal" line height.
* ``CBLC``: the strike size of a bitmap-only colour font (Noto Color Emoji), which FreeType can
  only load at that size.

Unreadable or odd files raise :class:`FontFileError`; callers treat such a font as absent.
"""

from __future__ import annotations

import bisect
import mmap
import struct
from dataclasses import dataclass
from pathlib import Path


class FontFileError(ValueError):
    """Not a font this module can read."""


@dataclass(frozen=True)
class VerticalMetrics:
    """In font units; ``ascender`` and ``descender`` both positive (distances from baseline)."""

    units_per_em: int
    ascender: int
    descender: int
    line_gap: int


class _Cmap:
    """Character to glyph lookup over segments, without expanding them into a dict."""

    def __init__(self, starts: list[int], ends: list[int], resolve: list[object]) -> None:
        self._starts = starts
        self._ends = ends
        self._resolve = resolve  # per segment: int delta (format 12 style) or callable

    def glyph(self, codepoint: int) -> int:
        i = bisect.bisect_right(self._starts, codepoint) - 1
        if i < 0 or codepoint > self._ends[i]:
            return 0
        how = self._resolve[i]
        if isinstance(how, int):
            return (codepoint + how) & 0xFFFFFFFF
        return how(codepoint)  # type: ignore[operator]


class FontFile:
    """One face of a font file (``index`` selects the face of a collection)."""

    def __init__(self, path: str | Path, index: int = 0) -> None:
        self.path = str(path)
        self.index = index
        try:
            # Mapped, not read: a CJK collection is 20 MB of which a lookup touches a few pages.
            with Path(path).open("rb") as handle:
                self._data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
            self._tables = self._table_directory()
        except (OSError, ValueError, struct.error, IndexError) as exc:
            raise FontFileError(f"cannot read font {path}: {exc}") from exc
        self._cmap: _Cmap | None = None

    def _table_directory(self) -> dict[str, tuple[int, int]]:
        data = self._data
        offset = 0
        if data[:4] == b"ttcf":
            (count,) = struct.unpack_from(">I", data, 8)
            if self.index >= count:
                raise FontFileError(f"{self.path} has no face {self.index}")
            (offset,) = struct.unpack_from(">I", data, 12 + 4 * self.index)
        tag = data[offset : offset + 4]
        if tag not in (b"\x00\x01\x00\x00", b"OTTO", b"true"):
            raise FontFileError(f"{self.path} is not an OpenType font")
        (num_tables,) = struct.unpack_from(">H", data, offset + 4)
        tables = {}
        for i in range(num_tables):
            rec = offset + 12 + 16 * i
            name = data[rec : rec + 4].decode("latin-1")
            table_offset, length = struct.unpack_from(">II", data, rec + 8)
            tables[name] = (table_offset, length)
        return tables

    def has_table(self, tag: str) -> bool:
        return tag in self._tables

    def _table(self, tag: str) -> int:
        if tag not in self._tables:
            raise FontFileError(f"{self.path} has no {tag} table")
        return self._tables[tag][0]

    @property
    def is_bitmap_only(self) -> bool:
        """No outlines: FreeType can load it only at one of its strike sizes."""
        return not (self.has_table("glyf") or self.has_table("CFF ") or self.has_table("CFF2"))

    def strike_size(self) -> int | None:
        """The ppem of the first bitmap strike of a CBDT/sbix colour font."""
        data = self._data
        if self.has_table("CBLC"):
            base = self._table("CBLC")
            (count,) = struct.unpack_from(">I", data, base + 4)
            if count:
                return data[base + 8 + 45]  # first BitmapSize record, field ppemY
        if self.has_table("sbix"):
            base = self._table("sbix")
            (count,) = struct.unpack_from(">I", data, base + 4)
            if count:
                (strike,) = struct.unpack_from(">I", data, base + 8)
                (ppem,) = struct.unpack_from(">H", data, base + strike)
                return ppem
        return None

    def metrics(self) -> VerticalMetrics:
        """Ascender, descender and line gap as Blink reads them through FreeType and Skia.

        ``hhea`` unless ``OS/2`` sets USE_TYPO_METRICS (fsSelection bit 7) or ``hhea`` is empty.
        """
        data = self._data
        (upem,) = struct.unpack_from(">H", data, self._table("head") + 18)
        asc = desc = gap = 0
        if self.has_table("hhea"):
            asc, desc, gap = struct.unpack_from(">hhh", data, self._table("hhea") + 4)
        if self.has_table("OS/2"):
            os2 = self._table("OS/2")
            (fs_selection,) = struct.unpack_from(">H", data, os2 + 62)
            typo = struct.unpack_from(">hhh", data, os2 + 68)
            if fs_selection & (1 << 7) or (asc == 0 and desc == 0):
                asc, desc, gap = typo
            if asc == 0 and desc == 0:
                win_asc, win_desc = struct.unpack_from(">HH", data, os2 + 74)
                asc, desc, gap = win_asc, -win_desc, 0
        if upem <= 0:
            raise FontFileError(f"{self.path} has no units per em")
        return VerticalMetrics(upem, asc, -desc, max(gap, 0))

    def has_char(self, codepoint: int) -> bool:
        if self._cmap is None:
            self._cmap = self._read_cmap()
        return self._cmap.glyph(codepoint) != 0

    def _read_cmap(self) -> _Cmap:
        data = self._data
        base = self._table("cmap")
        (count,) = struct.unpack_from(">H", data, base + 2)
        subtables: dict[tuple[int, int], int] = {}
        for i in range(count):
            platform, encoding, offset = struct.unpack_from(">HHI", data, base + 4 + 8 * i)
            subtables[(platform, encoding)] = base + offset
        for key in ((3, 10), (0, 6), (0, 4), (3, 1), (0, 3), (0, 2), (0, 1), (0, 0), (3, 0)):
            if key in subtables:
                offset = subtables[key]
                (fmt,) = struct.unpack_from(">H", data, offset)
                if fmt == 12:
                    return self._format12(offset)
                if fmt == 4:
                    return self._format4(offset)
        raise FontFileError(f"{self.path} has no Unicode cmap this reader understands")

    def _format12(self, offset: int) -> _Cmap:
        (groups,) = struct.unpack_from(">I", self._data, offset + 12)
        starts, ends, deltas = [], [], []
        for i in range(groups):
            start, end, glyph = struct.unpack_from(">III", self._data, offset + 16 + 12 * i)
            starts.append(start)
            ends.append(end)
            deltas.append(glyph - start)
        return _Cmap(starts, ends, deltas)  # type: ignore[arg-type]

    def _format4(self, offset: int) -> _Cmap:
        data = self._data
        (seg_x2,) = struct.unpack_from(">H", data, offset + 6)
        segs = seg_x2 // 2
        end_at = offset + 14
        start_at = end_at + seg_x2 + 2
        delta_at = start_at + seg_x2
        range_at = delta_at + seg_x2
        ends = list(struct.unpack_from(f">{segs}H", data, end_at))
        starts = list(struct.unpack_from(f">{segs}H", data, start_at))
        deltas = list(struct.unpack_from(f">{segs}h", data, delta_at))
        ranges = list(struct.unpack_from(f">{segs}H", data, range_at))
        resolve: list[object] = []
        for i in range(segs):
            if ranges[i] == 0:
                resolve.append(_Delta16(deltas[i]))
            else:
                resolve.append(
                    _RangeOffset(data, range_at + 2 * i + ranges[i], starts[i], deltas[i])
                )
        order = sorted(range(segs), key=starts.__getitem__)
        return _Cmap(
            [starts[i] for i in order], [ends[i] for i in order], [resolve[i] for i in order]
        )


class _Delta16:
    def __init__(self, delta: int) -> None:
        self.delta = delta

    def __call__(self, codepoint: int) -> int:
        return (codepoint + self.delta) & 0xFFFF


class _RangeOffset:
    def __init__(self, data: bytes | mmap.mmap, at: int, start: int, delta: int) -> None:
        self.data, self.at, self.start, self.delta = data, at, start, delta

    def __call__(self, codepoint: int) -> int:
        pos = self.at + 2 * (codepoint - self.start)
        if pos + 2 > len(self.data):
            return 0
        (glyph,) = struct.unpack_from(">H", self.data, pos)
        return (glyph + self.delta) & 0xFFFF if glyph else 0
