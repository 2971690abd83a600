"""Puts a text tile on the background: into a yuv420p frame for the encoder, or RGBA for PNG.

The background is one flat colour, so a frame is that colour plus the tile's box. The video
path blends the box straight into YUV through 256-entry lookup tables (the text colour is
constant too), never touching the rest of the frame and never converting RGB frames: a
full-frame float blend costs ~57 ms, this costs well under a millisecond.

Colours are BT.709, limited range, which is what HD H.264 players assume and what the encoder
tags the stream with. A transparent background is black in video.
"""

from __future__ import annotations

import numpy as np

from renderlab.render.planes import buffer_planes
from renderlab.render.raster import Tile

RGB = tuple[int, int, int]
BLACK: RGB = (0, 0, 0)

_KR, _KB = 0.2126, 0.0722
_KG = 1.0 - _KR - _KB


def parse_hex(colour: str) -> RGB:
    """``#RRGGBB`` to an (r, g, b) tuple."""
    value = colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def rgb_to_yuv(rgb: np.ndarray) -> np.ndarray:
    """BT.709 limited-range Y'CbCr of 8-bit R'G'B' (any shape ending in 3), as float32."""
    x = np.asarray(rgb, dtype=np.float32) / 255.0
    y = _KR * x[..., 0] + _KG * x[..., 1] + _KB * x[..., 2]
    cb = (x[..., 2] - y) / (2.0 * (1.0 - _KB))
    cr = (x[..., 0] - y) / (2.0 * (1.0 - _KR))
    return np.stack([16.0 + 219.0 * y, 128.0 + 224.0 * cb, 128.0 + 224.0 * cr], axis=-1)


def _to_u8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def background_yuv(background: RGB | None) -> tuple[int, int, int]:
    """The Y', Cb and Cr a frame's background is written in (a transparent one is black)."""
    y, u, v = _to_u8(rgb_to_yuv(np.array(background or BLACK)))
    return int(y), int(u), int(v)


class YuvCanvas:
    """One reusable yuv420p frame (I420 layout: Y, then U, then V) showing at most one tile.

    Painting restores the previous tile's box to the background and blends the new tile into
    its own box; the rest of the frame is never written again.
    """

    def __init__(self, width: int, height: int, background: RGB | None, colour: RGB) -> None:
        if width % 2 or height % 2:
            raise ValueError("yuv420p needs an even width and height")
        self.width, self.height = width, height
        self.buffer = np.empty((height * 3 // 2, width), dtype=np.uint8)
        self._bg = rgb_to_yuv(np.array(background or BLACK))
        self._fg = rgb_to_yuv(np.array(colour))
        bg = np.array(background_yuv(background), dtype=np.uint8)
        self._bg_u8 = bg
        self.y[:] = bg[0]
        self.u[:] = bg[1]
        self.v[:] = bg[2]
        self._dirty: tuple[int, int, int, int] | None = None

    @property
    def y(self) -> np.ndarray:
        return buffer_planes(self.buffer, self.width, self.height)[0]

    @property
    def u(self) -> np.ndarray:
        return buffer_planes(self.buffer, self.width, self.height)[1]

    @property
    def v(self) -> np.ndarray:
        return buffer_planes(self.buffer, self.width, self.height)[2]

    @property
    def rows(self) -> tuple[int, int] | None:
        """The luma rows (end exclusive) of the tile shown, or None when it shows none."""
        return None if self._dirty is None else (self._dirty[1], self._dirty[3])

    def paint(self, tile: Tile | None, opacity: float) -> None:
        """Show ``tile`` at ``opacity`` (0..1) and nothing else."""
        if self._dirty is not None:
            x0, y0, x1, y1 = self._dirty
            self.y[y0:y1, x0:x1] = self._bg_u8[0]
            self.u[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = self._bg_u8[1]
            self.v[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = self._bg_u8[2]
            self._dirty = None
        if tile is None or opacity <= 0.0:
            return
        x0, y0, x1, y1 = tile.x, tile.y, tile.x + tile.width, tile.y + tile.height
        ys, us, vs = (
            self.y[y0:y1, x0:x1],
            self.u[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2],
            self.v[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2],
        )
        if tile.colour is None:
            self._blend_flat(tile, opacity, ys, us, vs)
        else:
            self._blend_colour(tile, opacity, ys, us, vs)
        self._dirty = (x0, y0, x1, y1)

    def _blend_flat(
        self, tile: Tile, opacity: float, ys: np.ndarray, us: np.ndarray, vs: np.ndarray
    ) -> None:
        # np.take, not lut[a]: a 1-D table read by a whole array is half the time that way.
        a = tile.alpha
        steps = np.arange(256, dtype=np.float32) * (opacity / 255.0)
        ys[:] = np.take(_to_u8(self._bg[0] + steps * (self._fg[0] - self._bg[0])), a)
        quad = a[0::2, 0::2].astype(np.uint16)  # 0..1020: the 2x2 coverage sum
        quad += a[1::2, 0::2]
        quad += a[0::2, 1::2]
        quad += a[1::2, 1::2]
        steps4 = np.arange(1021, dtype=np.float32) * (opacity / 1020.0)
        us[:] = np.take(_to_u8(self._bg[1] + steps4 * (self._fg[1] - self._bg[1])), quad)
        vs[:] = np.take(_to_u8(self._bg[2] + steps4 * (self._fg[2] - self._bg[2])), quad)

    def _blend_colour(
        self, tile: Tile, opacity: float, ys: np.ndarray, us: np.ndarray, vs: np.ndarray
    ) -> None:
        assert tile.colour is not None
        a = tile.alpha.astype(np.float32) * (opacity / 255.0)
        share = tile.colour[..., 3:4].astype(np.float32) / 255.0
        pixel = rgb_to_yuv(tile.colour[..., :3]) * share + self._fg * (1.0 - share)
        delta = (pixel - self._bg) * a[..., None]
        ys[:] = _to_u8(self._bg[0] + delta[..., 0])
        quad = (delta[0::2, 0::2] + delta[1::2, 0::2] + delta[0::2, 1::2] + delta[1::2, 1::2]) / 4
        us[:] = _to_u8(self._bg[1] + quad[..., 1])
        vs[:] = _to_u8(self._bg[2] + quad[..., 2])


def background_pixel(background: RGB | None) -> np.ndarray:
    """One background pixel: RGBA (0, 0, 0, 0) when transparent, else RGB."""
    if background is None:
        return np.zeros(4, dtype=np.uint8)
    return np.array(background, dtype=np.uint8)


def _pixel_lut(opacity: float, background: RGB | None, colour: RGB) -> np.ndarray:
    """The composited pixel for each coverage value 0..255: (256, 3 or 4) uint8."""
    steps = np.arange(256, dtype=np.float32)[:, None] * (opacity / 255.0)
    fg = np.array(colour, dtype=np.float32)
    if background is None:
        lut = np.empty((256, 4), dtype=np.uint8)
        lut[:, :3] = fg
        lut[:, 3:] = _to_u8(steps * 255.0)
        lut[lut[:, 3] == 0] = 0
        return lut
    bg = np.array(background, dtype=np.float32)
    return _to_u8(bg + steps * (fg - bg))


def compose_band(
    tile: Tile | None,
    opacity: float,
    *,
    width: int,
    background: RGB | None,
    colour: RGB,
) -> tuple[np.ndarray, int]:
    """The rows of the frame the tile touches, composited: (rows, top row).

    RGBA with straight alpha over a transparent background, RGB over an opaque one. Every row
    outside the band is :func:`background_pixel` repeated.
    """
    pixel = background_pixel(background)
    if tile is None or opacity <= 0.0:
        return np.empty((0, width, pixel.size), dtype=np.uint8), 0
    band = np.empty((tile.height, width, pixel.size), dtype=np.uint8)
    band[:] = pixel
    region = band[:, tile.x : tile.x + tile.width]
    if tile.colour is None:
        lut = _pixel_lut(opacity, background, colour)
        if lut.shape[1] == 4:  # one 32-bit lookup per pixel: ~10x faster than a (256, 4) one
            band.view(np.uint32)[:, tile.x : tile.x + tile.width, 0] = np.take(
                np.ascontiguousarray(lut).view(np.uint32).ravel(), tile.alpha
            )
        else:
            for channel in range(3):
                region[..., channel] = np.take(lut[:, channel], tile.alpha)
        return band, tile.y
    a = tile.alpha.astype(np.float32) * (opacity / 255.0)
    share = tile.colour[..., 3:4].astype(np.float32) / 255.0
    fg = tile.colour[..., :3].astype(np.float32) * share + np.array(colour, np.float32) * (
        1.0 - share
    )
    if background is None:
        region[..., :3] = _to_u8(fg)
        region[..., 3] = _to_u8(a * 255.0)
        region[region[..., 3] == 0] = 0
    else:
        bg = np.array(background, dtype=np.float32)
        region[:] = _to_u8(bg + (fg - bg) * a[..., None])
    return band, tile.y


def compose_rgba(
    tile: Tile | None,
    opacity: float,
    *,
    width: int,
    height: int,
    background: RGB | None,
    colour: RGB,
) -> np.ndarray:
    """The whole frame as 8-bit RGBA (transparent background) or RGB (opaque background)."""
    band, top = compose_band(tile, opacity, width=width, background=background, colour=colour)
    frame = np.empty((height, width, band.shape[2]), dtype=np.uint8)
    frame[:] = background_pixel(background)
    frame[top : top + band.shape[0]] = band
    return frame
