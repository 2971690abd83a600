"""The body of one embedded render process (started by :mod:`renderlab.pipeline.embedded`).

It builds its own services (its own database engine: an engine never crosses a process
boundary), runs one render through :func:`~renderlab.pipeline.run.run_render`, tells its
supervisor when it has claimed the render (the supervisor's timeout counts from there, not
from process start-up), and exits. Everything it knows arrives as picklable arguments.
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
from renderlab.services import build_services

CLAIMED = "claimed"


def ping() -> None:
    """Does nothing: starting it once makes the process server load everything above."""


def job_id(token: str) -> str:
    """The ``render_id`` an embedded attempt records (the seed's Lambda render id)."""
    return f"embedded-{token}"


def main(
    render_id: str,
    settings: Settings,
    limits: Limits,
    token: str,
    workdir: str,
    conn: Connection,
) -> None:
    logs.configure(settings.log_format)
    services = build_services(settings, limits)

    def claimed(render: Render) -> None:
        # This process runs this one render: its every line from here says which, for whom,
        # and which request started it.
        logs.set_context(render_id=render.id, user_id=render.user_id, request_id=render.request_id)
        # If the supervisor is gone, the lease decides what happens next.
        with contextlib.suppress(OSError):
            conn.send((CLAIMED, render.id))

    try:
        run_render(
            services,
            render_id,
            owner=lease_owner(token),
            job_id=job_id(token),
            workdir=Path(workdir),
            on_claimed=claimed,
        )
    finally:
        conn.close()
        services.db.dispose()
