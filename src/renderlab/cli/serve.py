"""``renderlab serve``: the API, the web page and (with no broker) the render workers, in one go.

On a laptop this is the whole product: the SQLite file is migrated here, storage is a folder in
the data dir, and renders run in worker processes the app's lifespan starts and stops. With
``RENDERLAB_BROKER_URL`` set, renders go to Celery workers instead and only the API runs here.

``--processes N`` runs N API processes on the port (uvicorn's workers), for the cores one
Python process cannot use. Each builds its app from the environment (:func:`app_factory`), with
``RENDERLAB_PUBLIC_URL`` fixed by this parent and, in embedded mode, ``RENDERLAB_WORKERS``
split between them; SQLite writers of all of them queue on one file lock (``db.WriterQueue``).
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import typer

from renderlab.cli.app import app, refuse

if TYPE_CHECKING:
    from fastapi import FastAPI
    from rich.console import Console

    from renderlab.config import Settings
    from renderlab.services import Services

UNSPECIFIED_HOSTS = {"0.0.0.0", "::", ""}
# uvicorn's HTTP protocol with a deadline on request headers (RENDERLAB_HEADER_TIMEOUT_S),
# named by import string so that the --processes children load it too.
HEADER_DEADLINE_PROTOCOL = "renderlab.cli.slow_headers:HeaderDeadlineProtocol"


@app.command("serve", short_help="Run the API and the web page.")
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, min=0, max=65535, help="Port to listen on."),
    access_log: bool = typer.Option(True, help="Log one line per request."),
    processes: int = typer.Option(
        1, min=1, max=64, help="API processes sharing the port (render workers are split)."
    ),
) -> None:
    """Run the API + web page; with no broker configured also the embedded workers."""
    from renderlab.config import get_settings

    _refuse_dev_mode(host)
    _refuse_taken_port(host, port)
    settings = with_public_url(get_settings(), host, port)
    err = prepare_process_tree(settings, port)
    _prepare_database(err, settings.resolved_database_url())
    application = _build_app(err, settings)
    _banner(err, settings, host, port)
    options = _uvicorn_options(settings, host, port, access_log)
    if processes == 1:
        import uvicorn

        from renderlab.api import freeze_startup_heap

        freeze_startup_heap()
        uvicorn.run(application, **options)
        return
    # Each process builds its own app from the environment. The one built above has done what
    # must happen once (the secrets are in the data dir), so they do not race to create them.
    del application
    _run_processes(err, settings, processes, options)


def _refuse_dev_mode(host: str) -> None:
    from renderlab.config import get_settings

    refusal = dev_mode_refusal(get_settings(), host)
    if refusal is not None:
        raise refuse(refusal)


def _refuse_taken_port(host: str, port: int) -> None:
    """Exit 2 with one line when the address is taken, before the banner and the workers: else
    the banner said "renderlab on http://..." and uvicorn's bind error followed it (exit 3).
    A trial bind, as uvicorn binds (``SO_REUSEADDR``: a port in TIME_WAIT is free)."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as trial:
            trial.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            trial.bind(address)
    except OSError as exc:
        why = f"cannot be listened on ({exc.strerror or exc})"
        if exc.errno == errno.EADDRINUSE:
            why = "is in use (another renderlab serve?)"
        hint = f": stop what holds it, or pass --port {port + 1}" if port else ""
        raise refuse(f"{host}:{port} {why}{hint}") from None


def _build_app(err: Console, settings: Settings) -> FastAPI:
    from renderlab.api import create_app

    try:
        return create_app(_build(settings))
    except ValueError as exc:  # a configuration mistake: say which, without a traceback
        raise refuse(str(exc), err) from None


def _uvicorn_options(settings: Settings, host: str, port: int, access_log: bool) -> dict[str, Any]:
    from renderlab.limits import get_limits

    return {
        "host": host,
        "port": port,
        "access_log": access_log,
        "log_level": "info",
        **({"log_config": None} if settings.log_format == "json" else {}),  # ours, not uvicorn's
        "timeout_graceful_shutdown": get_limits().shutdown_grace_s,
        "http": HEADER_DEADLINE_PROTOCOL,
    }


def _run_processes(
    err: Console, settings: Settings, processes: int, options: dict[str, Any]
) -> None:
    """``processes`` uvicorn workers, each building its app with :func:`app_factory`."""
    import uvicorn

    os.environ["RENDERLAB_PUBLIC_URL"] = settings.resolved_public_url()
    if settings.is_embedded:
        each = max(1, settings.workers // processes)
        os.environ["RENDERLAB_WORKERS"] = str(each)
        err.print(f"{processes} API processes, {each} render worker(s) each")
    else:
        err.print(f"{processes} API processes")
    uvicorn.run(f"{__name__}:app_factory", factory=True, workers=processes, **options)


def app_factory() -> FastAPI:
    """One ``--processes`` process's app: what ``serve`` builds, from the environment."""
    from renderlab import logs
    from renderlab.api import create_app, freeze_startup_heap
    from renderlab.config import get_settings

    logs.configure(get_settings().log_format)  # a fresh (spawned) process: before it logs
    application = create_app(_build(get_settings()))
    freeze_startup_heap()
    return application


def prepare_process_tree(settings: Settings, port: int) -> Console:
    """What must be in place before the first process is started from this one: the log
    format, and a clean metrics directory every API and render process records into (both
    reach children through the environment). Returns the console for messages to people."""
    from renderlab import logs, metrics_dir

    logs.configure(settings.log_format)
    os.environ["RENDERLAB_LOG_FORMAT"] = settings.log_format
    metrics_dir.use_directory(
        metrics_dir.directory_for(settings.data_path, f"serve-{port}"), clean=True
    )
    return logs.stderr_console()


def _prepare_database(err: Console, database_url: str) -> None:
    from renderlab.db import upgrade

    if database_url.startswith("sqlite"):
        upgrade(database_url)  # the embedded database migrates itself
        return
    behind = schema_behind(database_url)
    if behind:
        raise refuse(behind, err)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an IP literal, IPv6 with or without brackets) is loopback."""
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    import ipaddress  # here: a render or --help has no use for it

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def public_exposure(settings: Settings, host: str) -> str | None:
    """What makes this server reachable from other machines (a non-loopback ``--host``, or a
    ``RENDERLAB_PUBLIC_URL`` on a non-loopback host: a proxy in front of it), or None."""
    if not is_loopback(host):
        return f"--host {host or '(all interfaces)'}"
    public = settings.public_url
    if public and not is_loopback(urlsplit(public).hostname or ""):
        return f"RENDERLAB_PUBLIC_URL={public}"
    return None


def dev_mode_refusal(settings: Settings, host: str) -> str | None:
    """Why ``serve`` must not start: ``dev`` identity chosen by default (nothing configured)
    on a server others can reach, where anyone could sign in as any user. ``RENDERLAB_AUTH=dev``
    set explicitly is a decision, and only warned about."""
    exposure = public_exposure(settings, host)
    if settings.auth_mode != "dev" or settings.auth_explicit or exposure is None:
        return None
    return (
        f"{exposure} is reachable from other machines, and RENDERLAB_AUTH is dev (no identity "
        "provider or secret configured), in which anyone can sign in as any user. Set "
        "RENDERLAB_AUTH=jwks (with RENDERLAB_JWKS_URL, RENDERLAB_JWT_ISSUER and "
        "RENDERLAB_JWT_AUDIENCE) or RENDERLAB_AUTH=hs256 (with RENDERLAB_JWT_SECRET, your "
        "backend mints the tokens); or RENDERLAB_AUTH=dev if anyone reaching it may be anyone."
    )


def _banner(err: Console, settings: Settings, host: str, port: int) -> None:
    base = f"http://{'127.0.0.1' if host in UNSPECIFIED_HOSTS else host}:{port}"
    mode = "embedded workers" if settings.is_embedded else f"broker {settings.broker_url}"
    err.print(f"renderlab on {base}/  (API {base}/docs, {mode}, data in {settings.data_path})")
    auth = settings.auth_mode
    how = {
        "dev": "anyone may sign in with any name",
        "hs256": "tokens signed by your backend with RENDERLAB_JWT_SECRET",
        "jwks": f"tokens of {settings.jwt_issuer} for audience {settings.jwt_audience}",
    }[auth]
    err.print(f"identity: RENDERLAB_AUTH={auth} ({how})")
    if auth != "dev":
        return
    err.print("get a token with:  renderlab token YOUR_NAME")
    exposure = public_exposure(settings, host)
    if exposure is not None:
        err.print(
            f"[yellow]warning:[/yellow] RENDERLAB_AUTH=dev with {exposure}: anyone who reaches "
            "this server can get a token for any name and read that user's renders."
        )


def with_public_url(settings: Settings, host: str, port: int) -> Settings:
    """Signed local download URLs must point at this server (``RENDERLAB_PUBLIC_URL`` wins)."""
    reachable = "127.0.0.1" if host in UNSPECIFIED_HOSTS else host
    if ":" in reachable and not reachable.startswith("["):
        reachable = f"[{reachable}]"  # an IPv6 literal
    public = settings.resolved_public_url(reachable, port)
    return settings.model_copy(update={"public_url": public})


def schema_behind(url: str) -> str | None:
    """Why a shared database is not ready, or None. Servers do not migrate it themselves: with
    several replicas starting at once, ``renderlab db upgrade`` is one deliberate step."""
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine

    config = Config()
    config.set_main_option("script_location", "renderlab:migrations")
    head = ScriptDirectory.from_config(config).get_current_head()
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except Exception as exc:
        return f"cannot reach the database ({type(exc).__name__}); check RENDERLAB_DATABASE_URL"
    finally:
        engine.dispose()
    if current != head:
        at = current or "nothing"
        return f"the database schema is at {at}, not {head}: run `renderlab db upgrade`"
    return None


def _build(settings: Settings) -> Services:
    from renderlab.limits import get_limits
    from renderlab.services import build_services

    services = build_services(settings, get_limits())
    if settings.is_embedded:
        from renderlab.pipeline.embedded import EmbeddedWorkers

        services.dispatcher = EmbeddedWorkers(services, settings.workers)
    else:
        from renderlab.workers.celery_app import make_celery
        from renderlab.workers.dispatch import CeleryDispatcher

        services.dispatcher = CeleryDispatcher(make_celery(settings, get_limits()), services)
    return services
