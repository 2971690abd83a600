"""Rasters of shaped runs, made once and composited wherever the run lands.

A typewriter's pictures differ by one grapheme: every line but the one being typed is the same
text in the same font, only moved (the block is centred afresh each frame). Drawing such a line
again costs its shaping and rasterising each time; here a run is rasterised once per sub-pixel
phase and the stored coverage is composited with the very call Pillow's ``ImageDraw.text`` ends
in, so the pixels are those of drawing it afresh (``tests/test_typewriter_cache.py``).

Runs whose box lies wholly outside the picture are skipped: their extent comes from the font's
metrics (cached per run), never from a raster. Rasters are kept up to a byte budget, least
recently used first out; the counters say how much work a render did.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from PIL import Image

from renderlab.render.fonts import pil_font, text_direction
from renderlab.render.layout import Run
from renderlab.render.raster import _bitmap_glyphs, _Canvas, _paste_clipped

DEFAULT_BUDGET_BYTES = 48 << 20
_EXTENT_ENTRIES = 65_536  # a render has at most a few thousand distinct runs
_PAD_PX = 3  # a raster at a sub-pixel phase reaches at most this far past the metric box


class RunCache:
    """Run rasters and extents for the pictures of one composition at one size."""

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        self.budget_bytes = budget_bytes
        self._rasters: OrderedDict[tuple[Any, ...], tuple[Any, int]] = OrderedDict()
        self._extents: dict[tuple[Any, ...], tuple[int, int, int, int] | None] = {}
        self._bytes = 0
        self.rasterised = 0  # runs shaped and rasterised (cache misses)
        self.reused = 0  # runs composited from a stored raster
        self.skipped = 0  # runs outside the picture, not drawn at all

    def draw(self, canvas: _Canvas, run: Run, x: float, baseline: float) -> None:
        """Composite ``run`` with its origin at (x, baseline) of ``canvas``."""
        if run.face.bitmap_size:
            self._draw_colour(canvas, run, x, baseline)
        else:
            self._draw_mono(canvas, run, x, baseline)

    def _draw_mono(self, canvas: _Canvas, run: Run, x: float, baseline: float) -> None:
        font = pil_font(run.face, canvas.size, canvas.optical_size)
        key = (run.text, run.face, run.rtl, canvas.size, canvas.optical_size)
        ix, iy = int(x), int(baseline)
        start = (math.modf(x)[0], math.modf(baseline)[0])
        if (*key, start) not in self._rasters and not _inside(canvas.mask, ix, iy):
            # Only a run starting off the picture may miss it: measure before rasterising.
            extent = self._extent(
                key,
                lambda: _inked(
                    font.getbbox(run.text, anchor="ls", direction=text_direction(run.rtl))
                ),
            )
            if extent is None or _outside(canvas.mask, ix, iy, extent, _PAD_PX):
                self.skipped += 1
                return

        def rasterise() -> tuple[Any, int]:
            # What ImageDraw.text does for one line of text on an "L" image (Pillow 10 to 13;
            # its stroke_filled argument only matters with a stroke).
            mask, offset = font.getmask2(
                run.text,
                "L",
                text_direction(run.rtl),
                None,
                None,
                0,
                "ls",
                255,
                start,
            )
            return (mask, offset), mask.size[0] * mask.size[1]

        mask, (dx, dy) = self._raster((*key, start), rasterise)
        canvas.draw.draw.draw_bitmap((ix + dx, iy + dy), mask, 255)

    def _draw_colour(self, canvas: _Canvas, run: Run, x: float, baseline: float) -> None:
        layer = canvas.colour_layer()  # made even when nothing lands, as the uncached drawing
        key = (run.text, run.face, run.rtl, canvas.size, canvas.optical_size)

        def measure() -> tuple[int, int, int, int] | None:
            font = pil_font(run.face, canvas.size, canvas.optical_size)
            left, top, right, bottom = font.getbbox(
                run.text, anchor="ls", direction=text_direction(run.rtl)
            )
            if right <= left or bottom <= top:
                return None
            factor = canvas.size / (run.face.bitmap_size or 1)
            return left, top, right, bottom, factor  # type: ignore[return-value]

        extent = self._extent(key, measure)
        if extent is None:
            return
        left, top, right, bottom, factor = extent  # type: ignore[misc]
        px, py = round(x + left * factor), round(baseline + top * factor)
        width = max(1, round((right - left) * factor))
        height = max(1, round((bottom - top) * factor))
        if _outside(layer, px, py, (0, 0, width, height), 0):
            self.skipped += 1
            return

        def rasterise() -> tuple[Any, int]:
            glyphs = _bitmap_glyphs(run, canvas.size, canvas.optical_size)
            assert glyphs is not None  # the extent said the run has ink
            return glyphs[0], glyphs[0].width * glyphs[0].height * 4

        image: Image.Image = self._raster(key, rasterise)
        _paste_clipped(layer, image, px, py)

    def _extent(self, key: tuple[Any, ...], measure: Callable[[], Any]) -> Any:
        if key in self._extents:
            return self._extents[key]
        if len(self._extents) >= _EXTENT_ENTRIES:
            self._extents.clear()
        value = measure()
        self._extents[key] = value
        return value

    def _raster(self, key: tuple[Any, ...], make: Callable[[], tuple[Any, int]]) -> Any:
        found = self._rasters.get(key)
        if found is not None:
            self._rasters.move_to_end(key)
            self.reused += 1
            return found[0]
        value, size = make()
        self.rasterised += 1
        self._rasters[key] = (value, size)
        self._bytes += size
        while self._bytes > self.budget_bytes and len(self._rasters) > 1:
            _, (_, dropped) = self._rasters.popitem(last=False)
            self._bytes -= dropped
        return value


def _inked(box: tuple[float, float, float, float]) -> tuple[float, float, float, float] | None:
    """A metric box, or None when it is empty (spaces: nothing to draw)."""
    return box if box[2] > box[0] and box[3] > box[1] else None


def _inside(image: Image.Image, x: int, y: int) -> bool:
    return 0 <= x < image.width and 0 <= y < image.height


def _outside(image: Image.Image, x: int, y: int, box: tuple[int, ...], pad: int) -> bool:
    """Whether box (left, top, right, bottom), placed at (x, y) and padded, misses ``image``."""
    left, top, right, bottom = box[:4]
    return (
        x + right + pad <= 0
        or y + bottom + pad <= 0
        or x + left - pad >= image.width
        or y + top - pad >= image.height
    )
