"""Running one render: claim, encode with progress, store the MP4, complete, or fail clearly.

The steps are separate functions so any worker can use them: the embedded pool runs
:func:`run_render` whole in a process of its own; a Celery worker can claim and
:func:`render_range` one chunk per task (the ``render_chunks`` table in :mod:`renderlab.models`
is there for that), join the segments, then :func:`store_output` and
:func:`~renderlab.pipeline.finish.complete_render`. None of them assumes who handed out the
work or where the process runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from renderlab import store
from renderlab.compositions import TextAnimationProps
from renderlab.models import Generation, Render
from renderlab.pipeline.claim import claim_render
from renderlab.pipeline.failures import LostClaim, classify
from renderlab.pipeline.finish import complete_render, fail_render
from renderlab.pipeline.progress import ProgressReporter
from renderlab.render import ProgressCallback, render_chunk
from renderlab.services import Services

log = logging.getLogger(__name__)

VIDEO_CONTENT_TYPE = "video/mp4"


def output_key(render: Render) -> str:
    """Where a render's video is stored: one object per render, under its owner's folder."""
    return f"renders/{render.user_id}/{render.id}.mp4"


def load_props(services: Services, render: Render) -> TextAnimationProps:
    """The generation's props, validated again: a bad row fails the render with its reason."""
    with services.db.session() as session:
        generation = session.get(Generation, render.generation_id)
        if generation is None:
            raise store.NotFound("generation not found")
        return TextAnimationProps(**generation.animation_props)


def render_range(
    props: TextAnimationProps,
    render: Render,
    start: int,
    end: int,
    out_path: Path,
    on_progress: ProgressCallback | None,
) -> Path:
    """Encode frames ``[start, end)`` at the render's size to ``out_path``.

    ``on_progress(done, total)`` counts frames of this range; raising from it stops the encoder
    and removes the partial file.
    """
    return render_chunk(
        props,
        start,
        end,
        out_path,
        width=render.width,
        height=render.height,
        on_progress=on_progress,
    )


def store_output(services: Services, render: Render, path: Path) -> tuple[str, int]:
    """Put the finished video in storage; returns ``(output_key, output_size)``.

    Raises :class:`~renderlab.storage.StorageError` when storage refuses it.
    """
    key = output_key(render)
    size = services.storage.put_file(key, path, VIDEO_CONTENT_TYPE)
    return key, size


def run_render(
    services: Services,
    render_id: str,
    *,
    owner: str,
    job_id: str,
    workdir: Path,
    on_claimed: Callable[[Render], None] | None = None,
) -> Render | None:
    """Claim and run ``render_id`` to its end. Returns the finished render, or None when it
    was not ours to run (not pending) or was taken from us midway (cancelled, timed out,
    handed on).

    Every failure ends as ``failed`` with a sentence from :func:`~.failures.classify`; the
    exception and its stack trace go to the log. ``KeyboardInterrupt`` and ``SystemExit`` are
    not caught: a worker told to stop leaves its lease to expire and the render is recovered.
    """
    render = claim_render(services, render_id, owner=owner, job_id=job_id)
    if render is None:
        log.info("render %s is not pending; nothing to do", render_id)
        return None
    if on_claimed is not None:
        on_claimed(render)
    log.info("render %s claimed by %s (attempt %d)", render_id, owner, render.attempts)
    reporter = ProgressReporter(services, render, owner)
    stored_key: str | None = None
    try:
        with reporter.running():
            props = load_props(services, render)
            video = workdir / f"{render.id}.mp4"
            render_range(props, render, 0, props.duration_in_frames, video, reporter.frames)
            reporter.flush()
            stored_key, size = store_output(services, render, video)
            finished = complete_render(
                services, render, owner, output_key=stored_key, output_size=size
            )
        log.info("render %s complete (%d bytes)", render_id, size)
        return finished
    except LostClaim as lost:
        log.info("render %s stopped: %s", render_id, lost)
        if stored_key is not None and lost.status == "failed":
            _discard(services, stored_key)
        return None
    except Exception as exc:
        failure = classify(exc, services.limits)
        log.error("render %s failed: %s", render_id, failure.message, exc_info=exc)
        if stored_key is not None:
            _discard(services, stored_key)
        return fail_render(services, render_id, failure.message, refund=failure.refund, owner=owner)


def _discard(services: Services, key: str) -> None:
    """Remove a video nobody will download (its render was cancelled or failed after storing)."""
    try:
        services.storage.delete(key)
    except Exception:
        log.warning("could not remove orphaned video %s", key, exc_info=True)
