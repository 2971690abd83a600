"""``renderlab worker``: a Celery worker for the cluster mode (needs RENDERLAB_BROKER_URL).

It consumes the render queue (chunks and joins of started renders first, then new renders) and
runs the reconciler in its main process, so a cluster needs no other process than API servers
and workers.
"""

from __future__ import annotations

import socket

import typer

from renderlab.cli.app import app


@app.command()
def worker(
    concurrency: int = typer.Option(
        0, "--concurrency", "-c", min=0, help="Render processes (default: the core count)."
    ),
    name: str = typer.Option(
        "", "--name", "-n", help="Worker name, unique in the cluster (default: renderlab@<host>)."
    ),
    queue: str = typer.Option(
        "renderlab",
        "--queues",
        "--queue",
        "-Q",
        help="Broker queue to consume and send to (one per deployment sharing a broker).",
    ),
    loglevel: str = typer.Option("INFO", "--loglevel", "-l", help="Log level."),
) -> None:
    """Run a Celery worker: renders chunks, joins them, and reconciles stuck work."""
    from renderlab.config import get_settings
    from renderlab.limits import get_limits

    settings = get_settings()
    if not settings.broker_url:
        typer.echo(
            "error: renderlab worker needs RENDERLAB_BROKER_URL (redis://... or amqp://...); "
            "without a broker, `renderlab serve` runs the renders itself",
            err=True,
        )
        raise typer.Exit(2)
    from celery import signals

    from renderlab.services import build_services
    from renderlab.workers.celery_app import make_celery
    from renderlab.workers.reconcile import Reconciler

    limits = get_limits()
    try:
        celery = make_celery(settings, limits, queue=queue)
        services = build_services(settings, limits)  # a bad storage URL stops us here
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    reconciler = Reconciler(celery, services)

    @signals.worker_ready.connect(weak=False)
    def _start_reconciler(**_: object) -> None:
        reconciler.start()  # in the main process, after the render processes were forked

    @signals.worker_shutdown.connect(weak=False)
    def _stop_reconciler(**_: object) -> None:
        reconciler.stop()

    argv = [
        "worker",
        f"--loglevel={loglevel}",
        "--queues",
        queue,
        "--hostname",
        name or f"renderlab@{socket.gethostname()}",
        # Nothing here uses worker-to-worker gossip, clock sync or events: skip their traffic.
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    celery.worker_main(argv)
