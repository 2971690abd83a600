"""``renderlab worker``: a Celery worker for the cluster mode (needs RENDERLAB_BROKER_URL).

It consumes the render queue (chunks and joins of started renders first, then new renders) and
runs the reconciler in its main process, so a cluster needs no other process than API servers
and workers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from renderlab.cli.app import app

if TYPE_CHECKING:
    from celery import Celery

    from renderlab.config import Settings
    from renderlab.services import Services


@app.command(short_help="Run a Celery worker (the cluster layout).")
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
    metrics_port: int = typer.Option(
        0, min=0, max=65535, help="Serve Prometheus metrics of this worker on this port (0: off)."
    ),
    metrics_host: str = typer.Option("127.0.0.1", help="Interface of the metrics port."),
) -> None:
    """Run a Celery worker: renders chunks, joins them, and reconciles stuck work."""
    from renderlab.config import get_settings

    settings = get_settings()
    if not settings.broker_url:
        typer.echo(
            "error: renderlab worker needs RENDERLAB_BROKER_URL (redis://... or amqp://...); "
            "without a broker, `renderlab serve` runs the renders itself",
            err=True,
        )
        raise typer.Exit(2)
    celery, services = _build(settings, queue)
    import socket  # here: every command would pay for it (about 2 ms)

    hostname = name or f"renderlab@{socket.gethostname()}"
    setup_worker_observability(settings.log_format, settings.data_path, hostname, loglevel)
    _reconcile_while_running(celery, services, metrics_host, metrics_port)
    celery.worker_main(celery_argv(settings.log_format, loglevel, queue, hostname, concurrency))


def _build(settings: Settings, queue: str) -> tuple[Celery, Services]:
    """The Celery app and the services, or exit 2 naming a configuration mistake."""
    from renderlab.limits import get_limits
    from renderlab.services import build_services
    from renderlab.workers.celery_app import make_celery

    limits = get_limits()
    try:
        celery = make_celery(settings, limits, queue=queue)
        services = build_services(settings, limits)  # a bad storage URL stops us here
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    return celery, services


def _reconcile_while_running(
    celery: Celery, services: Services, metrics_host: str, metrics_port: int
) -> None:
    """Start the reconciler (and the metrics port) once the worker is ready; stop it with it."""
    from celery import signals

    from renderlab.workers.reconcile import Reconciler

    reconciler = Reconciler(celery, services)

    @signals.worker_ready.connect(weak=False)
    def _start_reconciler(**_: object) -> None:
        reconciler.start()  # in the main process, after the render processes were forked
        if metrics_port:
            serve_metrics(metrics_host, metrics_port)

    @signals.worker_shutdown.connect(weak=False)
    def _stop_reconciler(**_: object) -> None:
        reconciler.stop()


def celery_argv(
    log_format: str, loglevel: str, queue: str, hostname: str, concurrency: int
) -> list[str]:
    argv = [
        *(["--quiet"] if log_format == "json" else []),  # no banner: JSON lines only
        "worker",
        f"--loglevel={loglevel}",
        "--queues",
        queue,
        "--hostname",
        hostname,
        # Nothing here uses worker-to-worker gossip, clock sync or events: skip their traffic.
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    return argv


def setup_worker_observability(log_format: str, data_path: Path, hostname: str, level: str) -> None:
    """A fresh metrics directory for this worker's processes, before Celery forks its pool;
    in JSON mode our log format everywhere (Celery is told not to set up its own). Text mode
    keeps Celery's own log lines."""
    from celery import signals

    from renderlab import logs, metrics_dir

    if log_format == "json":
        logs.configure("json", logging.getLevelName(level.upper()))

        @signals.setup_logging.connect(weak=False)
        def _our_logging(**_: object) -> None:
            logs.configure("json", logging.getLevelName(level.upper()))

    safe = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in hostname)
    metrics_dir.use_directory(metrics_dir.directory_for(data_path, f"worker-{safe}"), clean=True)


def serve_metrics(host: str, port: int) -> None:
    """This worker's counters (all its pool processes) on ``http://host:port/metrics``."""
    from prometheus_client import CollectorRegistry, start_http_server

    from renderlab import metrics_dir

    directory = metrics_dir.current_directory()
    assert directory is not None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics_dir.CompactingCollector(directory))
    start_http_server(port, addr=host, registry=registry)
