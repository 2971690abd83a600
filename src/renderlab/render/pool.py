"""Chunks of one render encoded in parallel processes, with progress and abort.

Imported only by renders with ``workers > 1``, so a plain render loads neither
multiprocessing nor concurrent.futures.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import threading
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from typing import Any

from renderlab.render.encode import ProgressCallback
from renderlab.render.video import Job, encode_job

_progress_queue: Any = None
_abort_event: Any = None


class RenderAborted(RuntimeError):
    """The parent asked a worker to stop (its progress callback raised)."""


def _init_worker(progress_queue: Any, abort_event: Any) -> None:
    global _progress_queue, _abort_event
    _progress_queue = progress_queue
    _abort_event = abort_event


def _pool_job(index: int, job: Job) -> int:
    def report(done: int, _chunk_total: int) -> None:
        if _abort_event is not None and _abort_event.is_set():
            raise RenderAborted("render aborted")
        if _progress_queue is not None:
            _progress_queue.put((index, done))

    return encode_job(job, report)


def _pool_context() -> multiprocessing.context.BaseContext:
    """forkserver: no fork of a threaded parent (uvicorn, Celery, Rich), cheap later forks."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["renderlab.render.chunks"])
        return ctx
    return multiprocessing.get_context("spawn")


def render_in_pool(
    jobs: list[Job], total: int, workers: int, on_progress: ProgressCallback | None
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
