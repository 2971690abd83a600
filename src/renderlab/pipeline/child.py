"""The body of an embedded render process (started by :mod:`renderlab.pipeline.embedded`).

A warm process (:func:`serve_renders`) builds its services once (its own database engine: an
engine never crosses a process boundary), then runs one render after another as its supervisor
sends them, each through :func:`~renderlab.pipeline.run.run_render`: it tells the supervisor
when it has claimed a render (the timeout counts from there) and when it is done with it. The
supervisor stops a render by killing the whole process (and starts another), so a render never
has to be interrupted cleanly. Everything it knows arrives as picklable arguments.
"""

from __future__ import annotations

import contextlib
from multiprocessing.connection import Connection
from pathlib import Path

from renderlab import logs
from renderlab.config import Settings
from renderlab.limits import Limits
from renderlab.models import Render
from renderlab.pipeline.claim import lease_owner
from renderlab.pipeline.run import run_render
from renderlab.services import Services, build_services

CLAIMED = "claimed"
DONE = "done"
RENDERS_PER_PROCESS = 200
"""A warm process exits after this many renders (its supervisor starts a fresh one), so
whatever a long run leaves behind in one interpreter stays bounded."""


def ping() -> None:
    """Does nothing: starting it once makes the process server load everything above."""


def job_id(token: str) -> str:
    """The ``render_id`` an embedded attempt records (the seed's Lambda render id)."""
    return f"embedded-{token}"


def serve_renders(settings: Settings, limits: Limits, conn: Connection) -> None:
    """A warm render process: ``(render_id, token, workdir)`` jobs from ``conn``, one at a
    time, each answered with :data:`CLAIMED` (if claimed) and :data:`DONE`; it returns when the
    supervisor closes its end, or after :data:`RENDERS_PER_PROCESS` renders."""
    logs.configure(settings.log_format)
    services = build_services(settings, limits)
    try:
        for _ in range(RENDERS_PER_PROCESS):
            try:
                render_id, token, workdir = conn.recv()
            except (EOFError, OSError):
                return
            run_one(services, render_id, token, workdir, conn)
            with contextlib.suppress(OSError):
                conn.send((DONE, render_id))
    finally:
        conn.close()
        services.db.dispose()


def run_one(services: Services, render_id: str, token: str, workdir: str, conn: Connection) -> None:
    """One render in this process, its claim reported on ``conn``."""

    def claimed(render: Render) -> None:
        # This process runs this one render: its every line from here says which, for whom,
        # and which request started it.
        logs.set_context(render_id=render.id, user_id=render.user_id, request_id=render.request_id)
        # If the supervisor is gone, the lease decides what happens next.
        with contextlib.suppress(OSError):
            conn.send((CLAIMED, render.id))

    # An exception escaping here (run_piece ends a render's own failures) ends the process:
    # the supervisor then acts on its exit code as for any render process that died.
    run_render(
        services,
        render_id,
        owner=lease_owner(token),
        job_id=job_id(token),
        workdir=Path(workdir),
        on_claimed=claimed,
    )
