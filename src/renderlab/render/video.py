"""Whole renders and stills: the convenience entry points over chunks and frames.

``render_video`` plans chunks, renders them (in a process pool when ``workers > 1``), joins
them and reports total progress. ``render_still`` draws one frame as PNG.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from renderlab.compositions.props import TextAnimationProps
from renderlab.limits import Limits
from renderlab.render.chunks import join_segments, plan_chunks, render_chunk
from renderlab.render.encode import DEFAULT_CRF, ProgressCallback
from renderlab.render.formats import OutputFormat, get_format
from renderlab.render.frames import FramePainter
from renderlab.render.settings import (
    as_props,
    check_render,
    validate_crf,
    validate_frame,
)


@dataclass(frozen=True)
class RenderResult:
    frames: int
    bytes: int
    seconds: float


def render_still(
    props: TextAnimationProps | Mapping[str, Any],
    frame: int,
    width: int = 1920,
    height: int = 1080,
    *,
    limits: Limits | None = None,
) -> bytes:
    """Frame ``frame`` as PNG bytes: RGBA when the background is transparent, else RGB.

    ``limits`` defaults to :class:`~renderlab.limits.Limits`' defaults (never the environment).
    """
    props = as_props(props)
    check_render(props, width, height, limits)
    validate_frame(props, frame)
    return FramePainter(props, width, height).png(frame)


def render_poster(
    props: TextAnimationProps | Mapping[str, Any],
    width: int,
    height: int,
    frame: int | None = None,
    *,
    limits: Limits | None = None,
) -> bytes:
    """The poster of a render: PNG of ``frame`` (default the last frame) at the render's size,
    RGBA with the alpha kept where the background is transparent (the still path's pixels)."""
    props = as_props(props)
    if frame is None:
        frame = props.duration_in_frames - 1
    return render_still(props, frame, width, height, limits=limits)


def render_video(
    props: TextAnimationProps | Mapping[str, Any],
    out_path: str | Path,
    *,
    width: int = 1920,
    height: int = 1080,
    crf: int = DEFAULT_CRF,
    codec: str = "h264",
    chunk_size: int | None = None,
    workers: int = 1,
    on_progress: ProgressCallback | None = None,
    limits: Limits | None = None,
) -> RenderResult:
    """Render ``props`` to ``out_path`` in ``codec`` (h264, vp9, prores or gif).

    Codecs that cannot be joined by stream copy (see :mod:`renderlab.render.formats`) are
    rendered in one piece whatever ``chunk_size``/``workers`` say.
    ``on_progress(done, total)`` counts frames of the whole render (from a helper thread when
    ``workers > 1``); if it raises, the render stops, no output is left, and it propagates.
    """
    started = time.perf_counter()
    limits = limits or Limits()
    props = as_props(props)
    check_render(props, width, height, limits)
    validate_crf(crf)
    fmt = get_format(codec)
    total = props.duration_in_frames
    chunks = plan_chunks(total, chunk_size, workers, limits.min_chunk_frames)
    if not fmt.joinable:
        chunks = [(0, total)]
    path = Path(out_path)
    if len(chunks) == 1:
        render_chunk(
            props,
            0,
            total,
            path,
            width=width,
            height=height,
            crf=crf,
            codec=codec,
            on_progress=on_progress,
            limits=limits,
        )
    else:
        encoding = (width, height, crf, fmt, limits)
        _render_chunks(props, chunks, path, encoding, min(workers, len(chunks)), on_progress)
    return RenderResult(total, path.stat().st_size, time.perf_counter() - started)


Job = tuple[TextAnimationProps, int, int, Path, int, int, int, str, Limits]


def _render_chunks(
    props: TextAnimationProps,
    chunks: list[tuple[int, int]],
    path: Path,
    encoding: tuple[int, int, int, OutputFormat, Limits],
    workers: int,
    on_progress: ProgressCallback | None,
) -> None:
    """Each frame range to a segment beside ``path`` (serially, or in a pool of ``workers``),
    then the segments joined into ``path``. ``encoding``: width, height, crf, format, limits."""
    width, height, crf, fmt, limits = encoding
    work = Path(tempfile.mkdtemp(prefix=".renderlab-", dir=path.parent))
    try:
        segments = [work / f"{i:04d}{fmt.extension}" for i in range(len(chunks))]
        jobs: list[Job] = [
            (props, start, end, segment, width, height, crf, fmt.codec, limits)
            for (start, end), segment in zip(chunks, segments, strict=True)
        ]
        total = props.duration_in_frames
        if workers == 1:
            _render_serially(jobs, total, on_progress)
        else:
            from renderlab.render.pool import render_in_pool  # only renders with workers

            render_in_pool(jobs, total, workers, on_progress)
        join_segments(segments, path, fps=props.fps, codec=fmt.codec)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def encode_job(job: Job, report: ProgressCallback) -> int:
    """Encode one job's segment; returns its frame count."""
    props, start, end, segment, width, height, crf, codec, limits = job
    render_chunk(
        props,
        start,
        end,
        segment,
        width=width,
        height=height,
        crf=crf,
        codec=codec,
        on_progress=report,
        limits=limits,
    )
    return end - start


def _render_serially(jobs: list[Job], total: int, on_progress: ProgressCallback | None) -> None:
    done_before = 0
    for job in jobs:

        def report(done: int, _chunk_total: int, base: int = done_before) -> None:
            if on_progress is not None:
                on_progress(base + done, total)

        done_before += encode_job(job, report)
