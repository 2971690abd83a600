"""Animated GIF: one frame per run of identical pictures, carrying the run's duration.

GIF frames have their own delays, so "encode each distinct picture once" is native here: a run
of n identical frames is one GIF frame shown n / fps seconds (delays are centiseconds; frame
boundaries are rounded on the running time, so the total never drifts). The file loops.

Colours: text over a flat background has at most 256 colours, the coverage ramp from the
background to the text colour, so each picture is mapped through that fixed palette exactly
(no quantiser). Over a transparent background, index 0 is the transparent entry and a pixel is
text where its coverage is at least half (GIF has 1-bit alpha). Pictures with colour glyphs
(emoji) are quantised adaptively. Pillow writes the file and crops each frame to what changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from renderlab.render.compose import RGB
from renderlab.render.raster import Tile

TRANSPARENT_INDEX = 0
_HALF = 128


def palette(background: RGB | None, colour: RGB) -> list[int]:
    """The 256-entry palette (flat RGB list) of text over this background."""
    if background is None:
        entries = [(0, 0, 0), colour] + [colour] * 254
    else:
        steps = np.arange(256, dtype=np.float32)[:, None] / 255.0
        bg, fg = np.array(background, np.float32), np.array(colour, np.float32)
        ramp = np.clip(np.rint(bg + steps * (fg - bg)), 0, 255).astype(np.uint8)
        entries = [(int(r), int(g), int(b)) for r, g, b in ramp]
    return [c for entry in entries for c in entry]


class Canvas(Protocol):
    """What a frame is drawn on: the render's size and colours (a ``FramePainter`` is one)."""

    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def background(self) -> RGB | None: ...
    @property
    def colour(self) -> RGB: ...


def picture(
    tile: Tile | None, opacity: float, canvas: Canvas, rgba: np.ndarray | None = None
) -> Image.Image:
    """One GIF frame ("P" mode, this render's palette or, with colour glyphs, its own)."""
    width, height = canvas.width, canvas.height
    background, colour = canvas.background, canvas.colour
    if tile is not None and tile.colour is not None and rgba is not None:
        return _quantised(rgba, background is None)
    index = np.zeros((height, width), dtype=np.uint8)
    if tile is not None and opacity > 0.0:
        cover = np.rint(tile.alpha.astype(np.float32) * opacity).astype(np.uint8)
        if background is None:
            cover = (cover >= _HALF).astype(np.uint8)
        index[tile.y : tile.y + tile.height, tile.x : tile.x + tile.width] = cover
    image = Image.fromarray(index, mode="P")
    image.putpalette(palette(background, colour))
    return image


def _quantised(rgba: np.ndarray, transparent: bool) -> Image.Image:
    rgb = Image.fromarray(np.ascontiguousarray(rgba[..., :3]))
    image = rgb.quantize(colors=255, method=Image.Quantize.FASTOCTREE)
    if not transparent:
        return image
    # Shift the palette up one entry and make index 0 the transparent one.
    index = np.asarray(image, dtype=np.uint8) + 1
    index[rgba[..., 3] < _HALF] = TRANSPARENT_INDEX
    shifted = Image.fromarray(index, mode="P")
    shifted.putpalette([0, 0, 0, *(image.getpalette() or [])[: 255 * 3]])
    return shifted


def durations_cs(counts: Iterable[int], fps: int, start: int = 0) -> Iterator[int]:
    """Centisecond delays of runs of ``counts`` frames, rounded on the running time."""
    frame = start
    for count in counts:
        begin = round(frame * 100 / fps)
        frame += count
        yield round(frame * 100 / fps) - begin


def write_gif(path: Path, frames: Iterable[tuple[Image.Image, int]], *, transparent: bool) -> None:
    """Write (picture, delay in centiseconds) pairs as a looping GIF."""
    items = iter(frames)
    first, first_cs = next(items)
    first.info["duration"] = first_cs * 10

    def rest() -> Iterator[Image.Image]:
        for image, cs in items:
            image.info["duration"] = cs * 10
            if transparent:
                image.info["transparency"] = TRANSPARENT_INDEX
            yield image

    options: dict[str, object] = {"loop": 0, "disposal": 2, "optimize": False}
    if transparent:
        options["transparency"] = TRANSPARENT_INDEX
    first.save(path, format="GIF", save_all=True, append_images=rest(), **options)
