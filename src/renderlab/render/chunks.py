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
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av

from renderlab.compositions.props import TextAnimationProps
from renderlab.limits import Limits
from renderlab.render.compose import YuvCanvas
from renderlab.render.encode import DEFAULT_CRF, ProgressCallback, SegmentWriter
from renderlab.render.frames import FramePainter, PictureKey
from renderlab.render.settings import RenderSettingsError, as_props, check_render, validate_crf


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
        raise RenderSettingsError("duration_in_frames", "duration_in_frames must be at least 1.")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise RenderSettingsError("workers", "workers must be at least 1.")
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise RenderSettingsError("chunk_size", "chunk_size must be at least 1.")
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
    on_progress: ProgressCallback | None = None,
    limits: Limits | None = None,
) -> Path:
    """Encode frames ``[start, end)`` to an MP4 segment at ``out_path``.

    ``on_progress(done, total)`` is called as frames are written (every few frames and at the
    end); if it raises, the render stops, the partial file is removed and the error propagates.
    """
    props = as_props(props)
    check_render(props, width, height, limits)
    validate_crf(crf)
    if not (isinstance(start, int) and isinstance(end, int)) or not (
        0 <= start < end <= props.duration_in_frames
    ):
        raise RenderSettingsError(
            "frames", f"chunk [{start}, {end}) is outside 0..{props.duration_in_frames}."
        )
    path = Path(out_path)
    painter = FramePainter(props, width, height)
    runs = picture_runs(painter, start, end)
    canvas = YuvCanvas(width, height, painter.background, painter.colour)
    writer = SegmentWriter(
        path,
        width=width,
        height=height,
        fps=props.fps,
        total=end - start,
        crf=crf,
        on_progress=on_progress,
    )
    try:
        for key, count in runs:
            canvas.paint(painter.tile(key), key.opacity)
            writer.write(canvas.buffer, count)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return path


def join_segments(segment_paths: Sequence[str | Path], out_path: str | Path, *, fps: int) -> Path:
    """Concatenate segments by stream copy (no re-encoding) into a ``+faststart`` MP4."""
    if not segment_paths:
        raise ValueError("nothing to join")
    path = Path(out_path)
    time_base = Fraction(1, fps)
    extradata: bytes | None = None
    output = av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"})
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
