"""Running one render: claim, encode with progress, store the output and its poster, complete,
or fail clearly.

The steps are separate functions so any worker can use them: the embedded pool runs
:func:`run_render` whole in a process of its own; a Celery worker can claim and
:func:`render_range` one chunk per task (the ``render_chunks`` table in :mod:`renderlab.models`
is there for that), join the segments, then :func:`store_output` and
:func:`~renderlab.pipeline.lifecycle.complete`. None of them assumes who handed out the
work or where the process runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from renderlab import store
from renderlab.compositions import TextAnimationProps
from renderlab.models import Generation, Render, RenderStatus
from renderlab.pipeline import lifecycle, outputs
from renderlab.pipeline.failures import LostClaim, RenderTimedOut, classify
from renderlab.pipeline.outputs import output_key as output_key  # re-exported
from renderlab.pipeline.outputs import store_output
from renderlab.pipeline.progress import ProgressReporter
from renderlab.render import ProgressCallback, render_chunk
from renderlab.services import Services
from renderlab.store import RenderSnapshot

log = logging.getLogger(__name__)

VIDEO_CONTENT_TYPE = "video/mp4"  # of h264 outputs and segments; see outputs.output_format
T = TypeVar("T")


def load_props(services: Services, render: Render | RenderSnapshot) -> TextAnimationProps:
    """The generation's props, validated again: a bad row fails the render with its reason."""
    with services.db.session() as session:
        generation = session.get(Generation, render.generation_id)
        if generation is None:
            raise store.NotFound("generation not found")
        return TextAnimationProps(**generation.animation_props)


def render_range(
    props: TextAnimationProps,
    render: Render | RenderSnapshot,
    start: int,
    end: int,
    out_path: Path,
    on_progress: ProgressCallback | None,
) -> Path:
    """Encode frames ``[start, end)`` at the render's size in its codec to ``out_path``.

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
        codec=render.codec,
        on_progress=on_progress,
    )


@dataclass(frozen=True)
class Faults:
    """How the face running a piece treats errors the pipeline cannot decide on alone.

    ``transient`` errors are re-raised (a Celery task retries them); ``will_retry(exc)`` says
    whether it will, so a chunk is given back first. ``timed_out`` errors are the face's own
    time limit (Celery's soft limit) and end the render as timed out.
    """

    transient: tuple[type[Exception], ...] = ()
    timed_out: tuple[type[Exception], ...] = ()
    will_retry: Callable[[BaseException], bool] = lambda exc: False


IN_PROCESS = Faults()
"""The embedded mode: nothing is retried by a face; every error ends the render."""


def fail_piece(
    services: Services, render_id: str, owner: str, exc: BaseException, faults: Faults = IN_PROCESS
) -> Render | None:
    """End ``owner``'s render with the user's sentence for ``exc`` (the stack trace goes to the
    log); None when it was not this call that ended it."""
    if isinstance(exc, faults.timed_out):
        exc = RenderTimedOut(render_id)
    failure = classify(exc, services.limits)
    log.error("render %s failed: %s", render_id, failure.message, exc_info=exc)
    return lifecycle.fail(services, render_id, failure, owner=owner)


def run_piece(
    services: Services,
    render_id: str,
    owner: str,
    work: Callable[[], T],
    *,
    faults: Faults = IN_PROCESS,
    on_stopped: Callable[[str], None] | None = None,
) -> T | None:
    """Run a claimed piece of ``owner``'s render (a whole render, a chunk, a join): its result,
    or None when it stopped. Shared by both modes, so a piece ends the same way everywhere:

    * :class:`LostClaim` (cancelled, timed out, handed on): nothing is written;
    * an error in ``faults.transient``: re-raised for the face to retry;
    * any other error: the render fails with the sentence :func:`classify` gives it.

    ``on_stopped(status)`` then cleans up after a stop, given the status the render is in.
    ``KeyboardInterrupt`` and ``SystemExit`` are not caught: a worker told to stop leaves its
    lease to expire and the render is recovered.
    """
    try:
        return work()
    except LostClaim as lost:
        log.info("render %s stopped: %s", render_id, lost)
        status = lost.status
    except faults.transient:
        raise
    except Exception as exc:
        fail_piece(services, render_id, owner, exc, faults)
        status = RenderStatus.FAILED
    if on_stopped is not None:
        on_stopped(status)
    return None


def run_render(
    services: Services,
    render_id: str,
    *,
    owner: str,
    job_id: str,
    workdir: Path,
    on_claimed: Callable[[Render], None] | None = None,
) -> Render | None:
    """Claim and run ``render_id`` to its end (the embedded mode's one piece). Returns the
    finished render, or None when it was not ours to run (not pending) or stopped midway
    (see :func:`run_piece`)."""
    render = lifecycle.claim(services, render_id, owner=owner, job_id=job_id)
    if render is None:
        log.info("render %s is not pending; nothing to do", render_id)
        return None
    if on_claimed is not None:
        on_claimed(render)
    log.info("render %s claimed by %s (attempt %d)", render_id, owner, render.attempts)
    claimed = render
    stored: list[str] = []

    def work() -> Render:
        reporter = ProgressReporter(services, claimed, owner)
        with reporter.running():
            props = load_props(services, claimed)
            video = workdir / f"{claimed.id}{outputs.output_format(claimed).extension}"
            render_range(props, claimed, 0, props.duration_in_frames, video, reporter.frames)
            reporter.flush()
            key, size = store_output(services, claimed, video)
            stored.append(key)
            poster = outputs.store_poster(services, claimed, props, workdir)
            stored.append(poster)
            finished = lifecycle.complete(
                services, claimed.id, owner, output_key=key, output_size=size, poster_key=poster
            )
        log.info("render %s complete (%d bytes)", render_id, size)
        return finished

    def discard(status: str) -> None:
        if stored and status == RenderStatus.FAILED:
            outputs.discard(services, *stored)

    return run_piece(services, render_id, owner, work, on_stopped=discard)
