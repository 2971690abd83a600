"""Chunked rendering: frame ranges encoded anywhere, joined without re-encoding.

As Remotion Lambda does, a render is split into frame ranges of at least
``limits.min_chunk_frames`` frames; any process or machine renders a range into a segment (an
MP4 starting with an IDR picture, encoded with the same settings, so every segment carries the
same SPS and PPS) and :func:`join_segments` copies their packets into one ``+faststart`` MP4.
Nothing here knows about databases, queues or HTTP.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from renderlab.caps import CapError
from renderlab.compositions.motion import CURSOR
from renderlab.compositions.props import TextAnimationProps
from renderlab.limits import Limits
from renderlab.render import gif
from renderlab.render.ahead import DEPTH, ahead
from renderlab.render.band import BAND_MAX_CRF, BandUnavailable, plan_band
from renderlab.render.compose import YuvCanvas, background_yuv
from renderlab.render.encode import DEFAULT_CRF, DEFAULT_PRESET, ProgressCallback, SegmentWriter
from renderlab.render.formats import OutputFormat, get_format
from renderlab.render.frames import BLANK, FramePainter, PictureKey
from renderlab.render.rgbavideo import RgbaVideoWriter
from renderlab.render.settings import as_props, check_render, validate_crf


def plan_chunks(
    duration_in_frames: int,
    chunk_size: int | None = None,
    workers: int = 1,
    min_chunk_frames: int = 20,
) -> list[tuple[int, int]]:
    """Half-open frame ranges covering ``0..duration_in_frames``, each at least
    ``min_chunk_frames`` long (unless the whole render is shorter) and at most about
    ``chunk_size``. Without ``chunk_size``, one chunk per worker."""
    if duration_in_frames < 1:
        raise CapError("duration_in_frames", "duration_in_frames must be at least 1.")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise CapError("workers", "workers must be at least 1.")
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise CapError("chunk_size", "chunk_size must be at least 1.")
    size = chunk_size if chunk_size is not None else math.ceil(duration_in_frames / workers)
    size = max(size, min_chunk_frames, 1)
    count = math.ceil(duration_in_frames / size)
    count = max(1, min(count, duration_in_frames // max(min_chunk_frames, 1)))
    bounds = [round(i * duration_in_frames / count) for i in range(count + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(count)]


def picture_runs(painter: FramePainter, start: int, end: int) -> list[tuple[PictureKey, int]]:
    """Frames ``start..end`` as runs of one picture: (picture, number of frames)."""
    runs: list[tuple[PictureKey, int]] = []
    for frame in range(start, end):
        key = painter.picture_key(painter.state(frame))
        if runs and runs[-1][0] == key:
            runs[-1] = (key, runs[-1][1] + 1)
        else:
            runs.append((key, 1))
    return runs


def render_chunk(
    props: TextAnimationProps,
    start: int,
    end: int,
    out_path: str | Path,
    *,
    width: int,
    height: int,
    crf: int = DEFAULT_CRF,
    codec: str = "h264",
    preset: str = DEFAULT_PRESET,
    on_progress: ProgressCallback | None = None,
    limits: Limits | None = None,
) -> Path:
    """Encode frames ``[start, end)`` in ``codec`` to a segment (or whole file) at ``out_path``.

    ``crf`` and ``preset`` are x264's (other codecs use their own fixed quality settings).
    A codec whose descriptor is not ``joinable`` must be given the whole range.
    ``on_progress(done, total)`` is called as frames are written (every few frames and at the
    end); if it raises, the render stops, the partial file is removed and the error propagates.
    """
    props = as_props(props)
    check_render(props, width, height, limits)
    validate_crf(crf)
    fmt = get_format(codec)
    _check_range(props, fmt, start, end)
    path = Path(out_path)
    painter = FramePainter(props, width, height)
    runs = picture_runs(painter, start, end)
    if fmt.codec == "gif":
        _write_gif(painter, runs, path, start, on_progress)
        return path
    total = end - start
    if fmt.codec == "h264":
        _write_h264(painter, runs, path, total, crf, preset, on_progress)
        return path
    writer = RgbaVideoWriter(
        path, fmt, width=width, height=height, fps=props.fps, total=total,
        transparent=painter.background is None, on_progress=on_progress,
    )  # fmt: skip
    try:
        for picture, count, _rows in ahead(_pictures(painter, runs, yuv=False)):
            writer.write(picture, count)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return path


def _write_h264(
    painter: FramePainter,
    runs: list[tuple[PictureKey, int]],
    path: Path,
    total: int,
    crf: int,
    preset: str,
    on_progress: ProgressCallback | None,
) -> None:
    """The segment through x264: in a band of rows when the text allows one
    (:mod:`renderlab.render.band`), else, or when the band turns out not to be exact, whole
    pictures (progress then does not go back: it is reported again only past where it was)."""
    reported = [0]

    def progress(done: int, frames: int) -> None:
        if on_progress is not None and (done > reported[0] or done == frames):
            reported[0] = max(reported[0], done)
            on_progress(done, frames)

    def encode(band: tuple[int, int] | None) -> None:
        writer = SegmentWriter(
            path, width=painter.width, height=painter.height, fps=painter.props.fps,
            total=total, crf=crf, preset=preset, on_progress=progress,
            band=None if band is None else (band, background_yuv(painter.background)),
        )  # fmt: skip
        try:
            for picture, count, rows in ahead(_pictures(painter, runs, yuv=True)):
                writer.write(picture, count, rows)
            writer.close()
        except BaseException:
            writer.abort()
            raise

    band = plan_band(_text_rows(painter, runs), painter.height) if crf <= BAND_MAX_CRF else None
    if band is not None:
        try:
            encode(band)
            return
        except BandUnavailable:
            pass
    encode(None)


def _text_rows(painter: FramePainter, runs: list[tuple[PictureKey, int]]) -> list[tuple[int, int]]:
    """The luma rows of the text in the pictures that reach farthest: the longest text, the
    largest scale, the lowest and highest offsets. Any other picture whose text still falls
    outside the band planned from these makes the band writer give up (and nothing is lost)."""
    keys = {key for key, _ in runs if key != BLANK}
    if not keys:
        return []
    reaching = {
        max(keys, key=lambda k: (len(k.shown), k.scale, k.offset_px)),
        max(keys, key=lambda k: (k.scale, len(k.shown))),
        max(keys, key=lambda k: (k.offset_px, len(k.shown))),
        min(keys, key=lambda k: (k.offset_px, -len(k.shown))),
    }
    # A typewriter's cursor reaches below the baseline, and its text is laid out anew for each
    # prefix: the longest prefix with the cursor and the shortest are drawn too (a 96 px
    # "Hello world" typed with its cursor left the band planned from the whole text alone).
    typed = [k for k in keys if k.shown.endswith(CURSOR)]
    if typed:
        reaching.add(max(typed, key=lambda k: len(k.shown)))
        reaching.add(min(typed, key=lambda k: len(k.shown)))
    reaching.add(min(keys, key=lambda k: (len(k.shown), -k.scale)))
    rows = []
    for key in reaching:
        tile = painter.tile(key)
        if tile is not None:
            rows.append((tile.y, tile.y + tile.height))
    return rows


def _pictures(
    painter: FramePainter, runs: list[tuple[PictureKey, int]], *, yuv: bool
) -> Iterator[tuple[np.ndarray, int, tuple[int, int] | None]]:
    """Each run's picture, yuv420p for x264 or RGBA for the other encoders, its length, and
    the rows where it differs from the picture before it (None: all of them, or not known).

    The yuv420p pictures are painted on canvases used in turn, as many as :func:`ahead`
    needs: a canvas is painted again only once the encoder has copied its picture.
    """
    if not yuv:
        for key, count in runs:
            yield painter.rgba_of(key), count, None
        return
    canvases = [
        YuvCanvas(painter.width, painter.height, painter.background, painter.colour)
        for _ in range(min(len(runs), DEPTH + 2))
    ]
    shown: tuple[int, int] | None = None  # the rows of the previous picture's text
    for index, (key, count) in enumerate(runs):
        canvas = canvases[index % len(canvases)]
        canvas.paint(painter.tile(key), key.opacity)
        changed = _union(shown, canvas.rows)
        shown = canvas.rows
        yield canvas.buffer, count, changed if changed is not None else (0, 0)


def _union(a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int] | None:
    if a is None or b is None:
        return a or b
    return min(a[0], b[0]), max(a[1], b[1])


def _check_range(props: TextAnimationProps, fmt: OutputFormat, start: int, end: int) -> None:
    if not (isinstance(start, int) and isinstance(end, int)) or not (
        0 <= start < end <= props.duration_in_frames
    ):
        raise CapError(
            "frames", f"chunk [{start}, {end}) is outside 0..{props.duration_in_frames}."
        )
    if not fmt.joinable and (start, end) != (0, props.duration_in_frames):
        raise CapError("frames", f"{fmt.codec} is rendered whole, not in chunks.")


def _write_gif(
    painter: FramePainter,
    runs: list[tuple[PictureKey, int]],
    path: Path,
    start: int,
    on_progress: ProgressCallback | None,
) -> None:
    """One GIF frame per run, its delay the run's duration."""
    total = sum(count for _, count in runs)
    delays = gif.durations_cs([count for _, count in runs], painter.props.fps, start)

    def frames() -> Iterator[tuple[Image.Image, int]]:
        done = 0
        for (key, count), delay in zip(runs, delays, strict=True):
            tile = painter.tile(key)
            rgba = painter.rgba_of(key) if tile is not None and tile.colour is not None else None
            image = gif.picture(tile, key.opacity, painter, rgba)
            yield image, delay
            done += count
            if on_progress is not None:
                on_progress(done, total)

    try:
        gif.write_gif(path, frames(), transparent=painter.background is None)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        raise


def join_segments(
    segment_paths: Sequence[str | Path], out_path: str | Path, *, fps: int, codec: str = "h264"
) -> Path:
    """Concatenate segments by stream copy (no re-encoding) into one ``+faststart`` file.

    Only codecs whose descriptor is ``joinable`` (h264, prores); the others are rendered whole.
    """
    if not segment_paths:
        raise ValueError("nothing to join")
    fmt = get_format(codec)
    if not fmt.joinable:
        raise ValueError(f"{codec} segments cannot be joined by stream copy; render it whole")
    path = Path(out_path)
    time_base = Fraction(1, fps)
    extradata: bytes | None = None
    output = av.open(str(path), "w", format=fmt.container, options={"movflags": "+faststart"})
    try:
        out_stream = None
        next_pts = 0
        for segment in segment_paths:
            with av.open(str(segment)) as source:
                in_stream = source.streams.video[0]
                data = bytes(in_stream.codec_context.extradata or b"")
                if out_stream is None:
                    out_stream = output.add_stream_from_template(in_stream)
                    extradata = data
                elif data != extradata:
                    raise ValueError(f"{segment} was encoded with different settings")
                first_pts = None
                count = 0
                for packet in source.demux(in_stream):
                    if packet.size == 0:
                        continue
                    pts = packet.pts if packet.pts is not None else packet.dts
                    if pts is None:
                        raise ValueError(f"{segment}: a packet without a timestamp")
                    frame_index = round(pts * packet.time_base / time_base)
                    if first_pts is None:
                        first_pts = frame_index
                    packet.stream = out_stream
                    packet.pts = packet.dts = next_pts + frame_index - first_pts
                    packet.duration = 1
                    packet.time_base = time_base
                    output.mux(packet)
                    count += 1
                next_pts += count
        output.close()
    except BaseException:
        with contextlib.suppress(Exception):
            output.close()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        raise
    return path
