"""Whole renders and stills: the convenience entry points over chunks and frames.

``render_video`` plans chunks, renders them (in a process pool when ``workers > 1``), joins
them and reports total progress. ``render_still`` draws one frame as PNG.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from renderlab.compositions.props import TextAnimationProps
from renderlab.limits import Limits
from renderlab.render.chunks import join_segments, plan_chunks, render_chunk
from renderlab.render.encode import DEFAULT_CRF, ProgressCallback
from renderlab.render.formats import get_format
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
        work = Path(tempfile.mkdtemp(prefix=".renderlab-", dir=path.parent))
        try:
            segments = [work / f"{i:04d}{fmt.extension}" for i in range(len(chunks))]
            jobs = [
                (props, s, e, seg, width, height, crf, codec, limits)
                for (s, e), seg in zip(chunks, segments, strict=True)
            ]
            if workers == 1:
                _render_serially(jobs, total, on_progress)
            else:
                _render_in_pool(jobs, total, min(workers, len(jobs)), on_progress)
            join_segments(segments, path, fps=props.fps, codec=codec)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return RenderResult(total, path.stat().st_size, time.perf_counter() - started)


_Job = tuple[TextAnimationProps, int, int, Path, int, int, int, str, Limits]


def _encode(job: _Job, report: ProgressCallback) -> int:
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


def _render_serially(jobs: list[_Job], total: int, on_progress: ProgressCallback | None) -> None:
    done_before = 0
    for job in jobs:

        def report(done: int, _chunk_total: int, base: int = done_before) -> None:
            if on_progress is not None:
                on_progress(base + done, total)

        done_before += _encode(job, report)


# --- process pool -----------------------------------------------------------------------------

_progress_queue: Any = None
_abort_event: Any = None


class RenderAborted(RuntimeError):
    """The parent asked a worker to stop (its progress callback raised)."""


def _init_worker(progress_queue: Any, abort_event: Any) -> None:
    global _progress_queue, _abort_event
    _progress_queue = progress_queue
    _abort_event = abort_event


def _pool_job(index: int, job: _Job) -> int:
    def report(done: int, _chunk_total: int) -> None:
        if _abort_event is not None and _abort_event.is_set():
            raise RenderAborted("render aborted")
        if _progress_queue is not None:
            _progress_queue.put((index, done))

    return _encode(job, report)


def _pool_context() -> multiprocessing.context.BaseContext:
    """forkserver: no fork of a threaded parent (uvicorn, Celery, Rich), cheap later forks."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["renderlab.render.chunks"])
        return ctx
    return multiprocessing.get_context("spawn")


def _render_in_pool(
    jobs: list[_Job], total: int, workers: int, on_progress: ProgressCallback | None
) -> None:
    ctx = _pool_context()
    progress_queue = ctx.Queue()
    abort = ctx.Event()
    per_chunk = [0] * len(jobs)
    pool = ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_init_worker, initargs=(progress_queue, abort)
    )
    stop = threading.Event()
    failure: list[BaseException] = []

    def drain() -> None:
        while not stop.is_set() or not progress_queue.empty():
            try:
                index, done = progress_queue.get(timeout=0.05)
            except queue.Empty:
                continue
            except (EOFError, OSError):
                return
            per_chunk[index] = max(per_chunk[index], done)
            if on_progress is not None and not failure:
                try:
                    on_progress(sum(per_chunk), total)
                except BaseException as exc:  # stop the render, re-raised below
                    failure.append(exc)
                    abort.set()

    reader = threading.Thread(target=drain, name="renderlab-progress", daemon=True)
    reader.start()
    try:
        futures: list[Future[int]] = [pool.submit(_pool_job, i, job) for i, job in enumerate(jobs)]
        finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
        errors = [f.exception() for f in finished if f.exception() is not None]
        if errors:
            abort.set()
            for future in futures:
                future.cancel()
            wait(futures)
    finally:
        stop.set()
        reader.join()
        pool.shutdown(wait=True, cancel_futures=True)
        with contextlib.suppress(Exception):
            progress_queue.close()
    if failure:
        raise failure[0]
    if errors:
        raise errors[0]  # type: ignore[misc]
    if on_progress is not None and sum(per_chunk) < total:
        # The last messages of a worker's queue may still be in flight when its result is in.
        on_progress(total, total)
