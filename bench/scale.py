"""Cluster-mode throughput: renders per minute with 1 and 2 ``renderlab worker`` processes, and
one chunked render's latency on 1 vs 2 workers.

Uses the machine's PostgreSQL (a scratch database it creates and drops) and Redis (DB 12, which
it flushes), and a moto S3 server on loopback it starts itself. Run:

    .venv/bin/python bench/scale.py [--renders 8] [--style fade-in] [--size 1280x720]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import boto3
import redis
from sqlalchemy import create_engine, text

from renderlab.config import Settings
from renderlab.db import upgrade
from renderlab.limits import Limits
from renderlab.pipeline.start import RenderRequest, start_render
from renderlab.services import build_services
from renderlab.store import create_generation, get_or_create_user, get_render_internal
from renderlab.workers.celery_app import make_celery
from renderlab.workers.dispatch import CeleryDispatcher

ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BROKER = "redis://127.0.0.1:6379/12"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=8)
    parser.add_argument("--style", default="typewriter")
    parser.add_argument("--size", default="1280x720")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    os.environ.update(CREDENTIALS)
    work = Path(tempfile.mkdtemp(prefix="renderlab-scale-"))
    moto = _start(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "5599"], work / "moto.log"
    )
    time.sleep(2)
    try:
        for workers in (1, 2):
            url = _database()
            try:
                per_minute, latency = _measure(url, workers, args, width, height, work)
            finally:
                _drop(url)
            print(
                f"{workers} worker(s): {per_minute:.1f} renders/min over {args.renders} renders;"
                f" one chunked 600-frame render: {latency:.2f} s"
            )
    finally:
        os.killpg(moto.pid, signal.SIGKILL)


def _measure(
    url: str, workers: int, args: argparse.Namespace, width: int, height: int, work: Path
) -> tuple[float, float]:
    redis.Redis.from_url(BROKER).flushdb()
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url="http://127.0.0.1:5599").create_bucket(Bucket=bucket)
    settings = Settings(
        data_dir=work,
        database_url=url,
        broker_url=BROKER,
        storage_url=f"s3://{bucket}",
        s3_endpoint_url="http://127.0.0.1:5599",
    )
    limits = Limits(renders_per_hour=10_000)
    env = {
        **os.environ,
        "RENDERLAB_DATABASE_URL": url,
        "RENDERLAB_BROKER_URL": BROKER,
        "RENDERLAB_STORAGE_URL": f"s3://{bucket}",
        "RENDERLAB_S3_ENDPOINT_URL": "http://127.0.0.1:5599",
    }
    services = build_services(settings, limits)
    services.dispatcher = CeleryDispatcher(make_celery(settings, limits), services)
    procs = [
        _start(
            [
                sys.executable,
                "-m",
                "renderlab",
                "worker",
                "--concurrency",
                "1",
                "--name",
                f"b{i}@bench",
                "--loglevel",
                "WARNING",
            ],
            work / f"b{i}.log",
            env,
        )
        for i in range(workers)
    ]
    try:
        with services.db.transaction() as session:
            user = get_or_create_user(session, "bench|user").id
            generation = create_generation(
                session,
                user,
                {
                    "text": "Scale out: " * 9,
                    "style": args.style,
                    "color": "#FFFFFF",
                    "background_color": "#101820",
                    "duration_in_frames": 600,
                },
            ).id
        _wait([_submit(services, user, generation, width, height)], services, 120)  # warm-up
        started = time.perf_counter()
        _wait([_submit(services, user, generation, width, height)], services, 120)
        latency = time.perf_counter() - started
        started = time.perf_counter()
        ids = [_submit(services, user, generation, width, height) for _ in range(args.renders)]
        _wait(ids, services, 600)
        per_minute = args.renders / (time.perf_counter() - started) * 60
        return per_minute, latency
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGKILL)
        services.db.dispose()


def _submit(services, user: str, generation: str, width: int, height: int) -> str:  # type: ignore[no-untyped-def]
    render, _ = start_render(services, user, RenderRequest(generation, width, height))
    return render.id


def _wait(ids: list[str], services, timeout: float) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with services.db.session() as session:
            states = [get_render_internal(session, i).status for i in ids]
        if all(s in ("complete", "failed") for s in states):
            if "failed" in states:
                raise SystemExit(f"a render failed: {states}")
            return
        time.sleep(0.05)
    raise SystemExit("renders did not finish in time")


def _start(
    argv: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True
    )


def _database() -> str:
    name = f"renderlab_scale_{uuid.uuid4().hex[:8]}"
    engine = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    url = ADMIN.rsplit("/", 1)[0] + "/" + name
    upgrade(url)
    return url


def _drop(url: str) -> None:
    engine = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    engine.dispose()


if __name__ == "__main__":
    main()
