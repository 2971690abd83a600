"""From props and a frame number to a picture: the part shared by videos and stills.

:class:`FramePainter` knows, for one composition at one output size, which frames are the same
picture (:meth:`FramePainter.picture_key`) and draws each distinct picture's text tile once.
Only the text's box differs between pictures; opacity is applied when compositing, so a
fade-in rasterises its text once and a slide-up once per whole-pixel offset. The runs of text
are rasterised once each (:class:`~renderlab.render.runcache.RunCache`): a typewriter picture
lays its prefix out afresh, as the spec says, but draws only the run being typed anew.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from renderlab.compositions.motion import FrameState, frame_state
from renderlab.compositions.props import TextAnimationProps
from renderlab.render.compose import RGB, background_pixel, compose_band, compose_rgba, parse_hex
from renderlab.render.fonts import FontFace, resolve_family
from renderlab.render.layout import Layout, layout
from renderlab.render.png import encode_png
from renderlab.render.raster import MIN_DRAWN_PX, Placement, Tile, rasterize
from renderlab.render.runcache import RunCache

_TILE_CACHE_SIZE = 4  # consecutive frames share tiles; a few is all a render needs


@dataclass(frozen=True)
class PictureKey:
    """Equal keys are identical output pictures (at this painter's size)."""

    shown: str
    scale: float
    offset_px: int
    opacity: float


BLANK = PictureKey("", 1.0, 0, 0.0)


@lru_cache(maxsize=64)
def _layout(text: str, face: FontFace, font_size: float, width: int, height: int) -> Layout:
    return layout(text, face, font_size, width, height)


class FramePainter:
    """Pictures of one composition at one output size."""

    def __init__(
        self, props: TextAnimationProps, width: int, height: int, *, cache_runs: bool = True
    ) -> None:
        """``cache_runs=False`` draws every run afresh: the reference drawing, for tests."""
        self.props = props
        self.width, self.height = width, height
        self.placement = Placement(width, height, props.width, props.height)
        self.face = resolve_family(props.font_family)
        self.colour: RGB = parse_hex(props.color)
        self.background: RGB | None = (
            parse_hex(props.background_color) if props.background_color else None
        )
        self._tiles: OrderedDict[tuple[str, float, int], Tile | None] = OrderedDict()
        self.runs: RunCache | None = RunCache() if cache_runs else None

    def state(self, frame: int) -> FrameState:
        return frame_state(self.props, frame)

    def picture_key(self, state: FrameState) -> PictureKey:
        """The state reduced to what changes pixels at this size (offsets in whole pixels)."""
        offset = round(state.offset_y * self.placement.k)
        size = self.props.font_size * self.placement.k * state.scale
        if state.opacity <= 0.0 or not state.shown or size < MIN_DRAWN_PX:
            return BLANK
        return PictureKey(state.shown, state.scale, offset, state.opacity)

    def tile(self, key: PictureKey) -> Tile | None:
        if key == BLANK:
            return None
        tile_key = (key.shown, key.scale, key.offset_px)
        if tile_key in self._tiles:
            self._tiles.move_to_end(tile_key)
            return self._tiles[tile_key]
        lay = _layout(
            key.shown, self.face, float(self.props.font_size), self.props.width, self.props.height
        )
        tile = rasterize(
            lay, self.placement, scale=key.scale, offset_y=key.offset_px, cache=self.runs
        )
        self._tiles[tile_key] = tile
        if len(self._tiles) > _TILE_CACHE_SIZE:
            self._tiles.popitem(last=False)
        return tile

    def rgba(self, frame: int) -> np.ndarray:
        """The frame as an RGBA (transparent background) or RGB array."""
        return self.rgba_of(self.picture_key(self.state(frame)))

    def rgba_of(self, key: PictureKey) -> np.ndarray:
        """The picture of ``key`` as an RGBA (transparent background) or RGB array."""
        return compose_rgba(
            self.tile(key),
            key.opacity,
            width=self.width,
            height=self.height,
            background=self.background,
            colour=self.colour,
        )

    def png(self, frame: int) -> bytes:
        """The frame as PNG bytes; only the rows holding text are compressed per call."""
        key = self.picture_key(self.state(frame))
        band, top = compose_band(
            self.tile(key),
            key.opacity,
            width=self.width,
            background=self.background,
            colour=self.colour,
        )
        return encode_png(background_pixel(self.background), band, top, self.height)
