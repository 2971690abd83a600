"""I420 pictures as numpy views, and the copy of rows from a buffer into a PyAV frame.

A picture is drawn into one contiguous buffer ((h * 3/2, w): Y, then U, then V) and handed to
an encoder in a PyAV frame, whose planes may have padded lines. Only the rows that changed are
copied, and the band encoder's frame holds some rows of the picture, not all.
"""

from __future__ import annotations

import av
import numpy as np


def buffer_planes(buffer: np.ndarray, width: int, height: int) -> tuple[np.ndarray, ...]:
    """Views of the Y, U and V planes of an I420 buffer."""
    flat = buffer.reshape(-1)
    luma, quarter = width * height, (width // 2) * (height // 2)
    return (
        flat[:luma].reshape(height, width),
        flat[luma : luma + quarter].reshape(height // 2, width // 2),
        flat[luma + quarter : luma + 2 * quarter].reshape(height // 2, width // 2),
    )


def frame_planes(frame: av.VideoFrame) -> list[np.ndarray]:
    """Writable views of a PyAV frame's planes, padding included (rows of ``line_size``)."""
    return [
        np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(-1, plane.line_size)
        for plane in frame.planes
    ]


def copy_rows(
    frame: av.VideoFrame,
    buffer: np.ndarray,
    width: int,
    height: int,
    rows: tuple[int, int],
    at: int = 0,
) -> None:
    """Copy luma rows [top, bottom) of the I420 ``buffer`` (``width`` x ``height``) and their
    chroma rows into ``frame``, whose first row is the picture's row ``at`` (even).

    Not ``VideoFrame.from_numpy_buffer``: PyAV 18 derives the height from it as rows // 6 * 4,
    so at heights with h mod 4 == 2 the frame is 2 rows short and its chroma planes start 2
    rows early (the text's colour sits below its glyphs).
    """
    top, bottom = rows
    top, bottom = max(0, top - top % 2), min(height, bottom + bottom % 2)  # whole chroma rows
    sources = buffer_planes(buffer, width, height)
    for index, (plane, source) in enumerate(zip(frame_planes(frame), sources, strict=True)):
        shift = 0 if index == 0 else 1
        first, end, base = top >> shift, bottom >> shift, at >> shift
        plane[first - base : end - base, : source.shape[1]] = source[first:end]


def fill_flat(frame: av.VideoFrame, yuv: tuple[int, int, int]) -> None:
    """Every sample of ``frame`` (padding too) the colour ``yuv``."""
    for plane, value in zip(frame_planes(frame), yuv, strict=True):
        plane[:] = value
