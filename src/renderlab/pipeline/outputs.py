"""A render's stored files: its output in its codec's format, and its poster PNG.

Shared by both modes (``run.run_render`` embedded, ``cluster.join_job`` under Celery) so the
keys, Content-Types and cleanup are the same everywhere. Keys come from
:mod:`renderlab.storage.keys` (named by the render alone, never its owner) and are fixed for
a render: a retried attempt overwrites what an earlier one stored, and a failed render's
files are removed by :func:`discard_failed` whoever ended it (its worker, a cancel, the
reconciler), so a failed or lost render leaves nothing behind.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

from sqlalchemy.orm import Session

from renderlab.compositions import TextAnimationProps
from renderlab.models import Render, RenderStatus
from renderlab.render.formats import OutputFormat, get_format
from renderlab.services import Services
from renderlab.storage import keys

log = logging.getLogger(__name__)

POSTER_CONTENT_TYPE = "image/png"


class _Render(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def codec(self) -> str: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def poster_frame(self) -> int | None: ...


def output_format(render: _Render) -> OutputFormat:
    """The descriptor of the render's codec (h264 for rows from before codecs existed)."""
    return get_format(render.codec or "h264")


def output_key(render: _Render) -> str:
    """Where a render's output is stored: ``renders/<id>.<ext>`` (no user id in it)."""
    return keys.output_key(render.id, output_format(render).extension.lstrip("."))


def poster_key(render: _Render) -> str:
    return keys.poster_key(render.id)


def store_output(services: Services, render: _Render, path: Path) -> tuple[str, int]:
    """Put the finished output in storage with its codec's Content-Type; returns
    ``(output_key, output_size)``. Raises :class:`~renderlab.storage.StorageError`."""
    key = output_key(render)
    size = services.storage.put_file(key, path, output_format(render).content_type)
    return key, size


def store_poster(
    services: Services, render: _Render, props: TextAnimationProps, workdir: Path
) -> str:
    """Draw the poster (``poster_frame``, default the last frame, at the render's size, alpha
    kept) and store it beside the output; returns its key."""
    from renderlab.render import render_poster  # the renderer: loaded by workers only

    png = render_poster(props, render.width, render.height, frame=render.poster_frame)
    path = workdir / f"{render.id}-poster.png"
    path.write_bytes(png)
    key = poster_key(render)
    services.storage.put_file(key, path, POSTER_CONTENT_TYPE)
    return key


def discard(services: Services, *stored: str) -> None:
    """Remove files nobody will download; a storage error is logged, never raised (the
    render's status is what matters to its owner)."""
    for key in stored:
        try:
            services.storage.delete(key)
        except Exception:
            log.warning("could not remove orphaned file %s", key, exc_info=True)


def discard_failed(session: Session, services: Services, render: Render, outcome: object) -> None:
    """``lifecycle.AT_END`` hook: a render that ends failed loses whatever an attempt stored
    under its keys (a worker killed between storing and completing cannot clean up itself).
    A render never claimed stored nothing: cancelling it costs no storage call."""
    if render.status != RenderStatus.FAILED or not render.attempts:
        return
    try:
        discard(services, output_key(render), poster_key(render))
    except Exception:  # an unknown codec on an old row: nothing of ours was stored
        log.warning("could not name the files of failed render %s", render.id, exc_info=True)
