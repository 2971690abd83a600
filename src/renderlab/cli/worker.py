"""``renderlab worker``: a Celery worker for the cluster mode (needs RENDERLAB_BROKER_URL)."""

from __future__ import annotations

import socket

import typer

from renderlab.cli.app import app
from renderlab.config import get_settings
from renderlab.limits import get_limits


@app.command()
def worker(
    concurrency: int = typer.Option(0, min=0, help="Processes (default: the core count)."),
    name: str = typer.Option("", help="Worker name (default: renderlab@<host>)."),
    loglevel: str = typer.Option("INFO", help="Log level."),
) -> None:
    """Run a Celery worker: renders chunks, joins them, and reconciles stuck work."""
    settings = get_settings()
    if not settings.broker_url:
        typer.echo(
            "renderlab worker needs RENDERLAB_BROKER_URL (redis://... or amqp://...)", err=True
        )
        raise typer.Exit(2)
    from celery import signals

    from renderlab.services import build_services
    from renderlab.workers.celery_app import QUEUE, make_celery
    from renderlab.workers.dispatch import CeleryDispatcher

    limits = get_limits()
    celery = make_celery(settings, limits)
    reconciler: list[CeleryDispatcher] = []

    @signals.worker_ready.connect(weak=False)
    def _start_reconciler(**_: object) -> None:
        dispatcher = CeleryDispatcher(celery, build_services(settings, limits))
        dispatcher.start()
        reconciler.append(dispatcher)

    @signals.worker_shutdown.connect(weak=False)
    def _stop_reconciler(**_: object) -> None:
        for dispatcher in reconciler:
            dispatcher.stop()

    argv = [
        "worker",
        f"--loglevel={loglevel}",
        "-Q",
        QUEUE,
        "-n",
        name or f"renderlab@{socket.gethostname()}",
    ]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    celery.worker_main(argv)
