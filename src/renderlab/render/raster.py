"""Draws a laid-out text block into a small tile at the output resolution.

Only the text's box is rasterised (a few percent of the frame); the frame around it is the
background, which the compositors fill without touching the tile. Text is drawn at its final
size (font size x output scale x animation scale), as a browser rasterises a transformed layer
for a screenshot, so scaled text stays sharp. Colour glyphs (emoji from a bitmap font) are drawn
at their strike size and resampled.

Nothing is ever drawn outside the frame's padded width ([40, 1880] in 1080p pixels, scaled):
the tile is clipped to it, even while the scale spring overshoots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw

from renderlab.render.fonts import pil_font, text_direction
from renderlab.render.layout import FRAME_HEIGHT, FRAME_WIDTH, PADDING_X, Layout, Run

if TYPE_CHECKING:
    from renderlab.render.runcache import RunCache

MIN_DRAWN_PX = 0.5  # text smaller than this (the spring's first frames) is invisible
OVERHANG_EM = 1.5  # room above and below the line boxes for marks and tall glyphs


@dataclass(frozen=True)
class Tile:
    """Coverage of the text at (x, y) in the output frame; even position and size.

    ``alpha`` is the coverage of each pixel (uint8). ``colour`` is None when every covered pixel
    has the text colour (no colour glyphs); otherwise an RGBA array whose RGB is the colour of
    the colour glyphs and whose A is the share of the pixel's coverage they make (the rest is
    text colour). Tiles never hold the text colour, so one tile serves every colour.
    """

    x: int
    y: int
    alpha: np.ndarray
    colour: np.ndarray | None

    @property
    def height(self) -> int:
        return int(self.alpha.shape[0])

    @property
    def width(self) -> int:
        return int(self.alpha.shape[1])


@dataclass(frozen=True)
class Placement:
    """Where the composition frame lands in the output: uniform scale ``k``, centred.

    ``frame_width`` x ``frame_height`` is the composition's size (the props'); the output is
    the same aspect ratio, smaller or equal, so the whole frame scales uniformly.
    """

    width: int
    height: int
    frame_width: int = FRAME_WIDTH
    frame_height: int = FRAME_HEIGHT

    @property
    def k(self) -> float:
        return min(self.width / self.frame_width, self.height / self.frame_height)

    def x(self, x: float) -> float:
        return self.width / 2 + (x - self.frame_width / 2) * self.k

    def y(self, y: float) -> float:
        return self.height / 2 + (y - self.frame_height / 2) * self.k

    def clip_box(self) -> tuple[int, int, int, int]:
        """The padded width, and the frame's height, in output pixels: (x0, y0, x1, y1)."""
        x0 = max(0, math.ceil(self.x(PADDING_X) - 1e-9))
        x1 = min(self.width, math.floor(self.x(self.frame_width - PADDING_X) + 1e-9))
        y0 = max(0, math.ceil(self.y(0) - 1e-9))
        y1 = min(self.height, math.floor(self.y(self.frame_height) + 1e-9))
        return x0, y0, x1, y1


def rasterize(
    layout: Layout,
    placement: Placement,
    *,
    scale: float = 1.0,
    offset_y: int = 0,
    cache: RunCache | None = None,
) -> Tile | None:
    """The tile of ``layout`` scaled by ``scale`` about the frame centre and moved ``offset_y``
    output pixels down; None when nothing is visible.

    With a ``cache`` each run's raster is made once and composited where the run lands (the
    pictures of a typewriter share all but the line being typed) and runs wholly outside the
    tile are skipped; without one every run is drawn afresh (the reference the tests compare
    the cached drawing with: both give the same pixels).
    """
    k = placement.k
    size = layout.font_size * k * scale
    if size < MIN_DRAWN_PX or not layout.lines:
        return None
    cx, cy = placement.frame_width / 2, placement.frame_height / 2
    clip_x0, clip_y0, clip_x1, clip_y1 = placement.clip_box()

    def out_y(y: float) -> float:
        return placement.y(cy + (y - cy) * scale) + offset_y

    margin = OVERHANG_EM * size
    y0 = max(clip_y0, math.floor(out_y(layout.top) - margin))
    y1 = min(clip_y1, math.ceil(out_y(layout.bottom) + margin))
    if y1 <= y0 or clip_x1 <= clip_x0:
        return None
    canvas = _Canvas(Image.new("L", (clip_x1 - clip_x0, y1 - y0)), size, layout.optical_size)
    for line in layout.lines:
        baseline = out_y(line.baseline) - y0
        for run in line.runs:
            x = placement.x(cx + (run.x - cx) * scale) - clip_x0
            if cache is None:
                canvas.draw_run(run, x, baseline)
            else:
                cache.draw(canvas, run, x, baseline)
    return _crop(canvas.mask, canvas.colour, clip_x0, y0, placement)


class _Canvas:
    """The picture being drawn: text coverage, and colour glyphs when there are any."""

    def __init__(self, mask: Image.Image, size: float, optical_size: float) -> None:
        self.mask = mask
        self.draw = ImageDraw.Draw(mask)
        self.colour: Image.Image | None = None
        self.size = size
        self.optical_size = optical_size

    def colour_layer(self) -> Image.Image:
        if self.colour is None:
            self.colour = Image.new("RGBA", self.mask.size)
        return self.colour

    def draw_run(self, run: Run, x: float, baseline: float) -> None:
        """The uncached drawing: Pillow shapes and rasterises the run here and now."""
        if run.face.bitmap_size:
            _draw_bitmap_run(self.colour_layer(), run, x, baseline, self.size, self.optical_size)
            return
        font = pil_font(run.face, self.size, self.optical_size)
        self.draw.text(
            (x, baseline),
            run.text,
            fill=255,
            font=font,
            anchor="ls",
            direction=text_direction(run.rtl),
        )


def _draw_bitmap_run(
    canvas: Image.Image, run: Run, x: float, baseline: float, size: float, optical_size: float
) -> None:
    glyphs = _bitmap_glyphs(run, size, optical_size)
    if glyphs is not None:
        image, left, top = glyphs
        _paste_clipped(canvas, image, round(x + left), round(baseline + top))


def _bitmap_glyphs(
    run: Run, size: float, optical_size: float
) -> tuple[Image.Image, float, float] | None:
    """A colour run drawn at its strike and resampled to ``size``: (image, left, top) with
    left/top the image's offset from the run's origin on the baseline; None if empty."""
    font = pil_font(run.face, size, optical_size)
    strike = run.face.bitmap_size or 1
    left, top, right, bottom = font.getbbox(
        run.text, anchor="ls", direction=text_direction(run.rtl)
    )
    if right <= left or bottom <= top:
        return None
    glyphs = Image.new("RGBA", (int(right - left), int(bottom - top)))
    ImageDraw.Draw(glyphs).text(
        (-left, -top),
        run.text,
        font=font,
        anchor="ls",
        embedded_color=True,
        direction=text_direction(run.rtl),
    )
    factor = size / strike
    width = max(1, round(glyphs.width * factor))
    height = max(1, round(glyphs.height * factor))
    glyphs = glyphs.resize((width, height), Image.Resampling.LANCZOS)
    return glyphs, left * factor, top * factor


def _paste_clipped(canvas: Image.Image, image: Image.Image, x: int, y: int) -> None:
    sx0, sy0 = max(0, -x), max(0, -y)
    sx1 = min(image.width, canvas.width - x)
    sy1 = min(image.height, canvas.height - y)
    if sx1 <= sx0 or sy1 <= sy0:
        return
    part = image.crop((sx0, sy0, sx1, sy1))
    canvas.alpha_composite(part, dest=(x + sx0, y + sy0))


def _crop(
    mask: Image.Image,
    colour: Image.Image | None,
    x_at: int,
    y_at: int,
    placement: Placement,
) -> Tile | None:
    box = mask.getbbox()
    if colour is not None:
        colour_box = colour.getchannel("A").getbbox()
        if colour_box is not None:
            box = colour_box if box is None else _union(box, colour_box)
    if box is None:
        return None
    left, top, right, bottom = box
    # Even position and size, as 4:2:0 chroma needs; the frame's sides are even too.
    fx0, fy0 = (x_at + left) // 2 * 2, (y_at + top) // 2 * 2
    fx1 = min(placement.width, -(-(x_at + right) // 2) * 2)
    fy1 = min(placement.height, -(-(y_at + bottom) // 2) * 2)
    crop = (fx0 - x_at, fy0 - y_at, fx1 - x_at, fy1 - y_at)
    alpha = np.asarray(mask.crop(crop), dtype=np.uint8)
    if colour is None:
        return Tile(fx0, fy0, alpha, None)
    return _with_colour(Tile(fx0, fy0, alpha, None), np.asarray(colour.crop(crop)))


def _union(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _with_colour(tile: Tile, colour: np.ndarray) -> Tile:
    """Colour glyphs composited over the text coverage ("source over"), as a :class:`Tile`."""
    glyph_alpha = colour[..., 3].astype(np.float32) / 255.0
    text_alpha = tile.alpha.astype(np.float32) / 255.0
    total = glyph_alpha + text_alpha * (1.0 - glyph_alpha)
    alpha = np.clip(np.rint(total * 255.0), 0, 255).astype(np.uint8)
    # Share of each pixel's coverage that comes from colour glyphs (the rest is text colour).
    share = np.divide(glyph_alpha, total, out=np.zeros_like(total), where=total > 0)
    rgba = np.empty(colour.shape, dtype=np.uint8)
    rgba[..., :3] = colour[..., :3]
    rgba[..., 3] = np.clip(np.rint(share * 255.0), 0, 255).astype(np.uint8)
    return Tile(tile.x, tile.y, alpha, rgba)
